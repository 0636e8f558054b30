"""HTTP JSON API: parse → call a service → shape the answer."""
