-- The application's login role: not the owner, no BYPASSRLS (row-level security applies).
CREATE ROLE tenantry_app LOGIN PASSWORD 'app-password' NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
