"""One router per URL segment."""
