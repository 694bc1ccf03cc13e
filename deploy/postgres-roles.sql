-- The PostgreSQL roles of a Licentia exchange, least privilege (docs/operations.md,
-- "Deploying"). Run once as a superuser (or a role with CREATEROLE that owns the database),
-- connected to the exchange's database:
--   psql -d licentia -f deploy/postgres-roles.sql
-- then give each role a password (\password licentia_owner, \password licentia_app) or a
-- certificate, as your pg_hba.conf wants.
--
--   licentia_owner  owns the schema and its tables; runs `licentia-server migrate`
--                   (before each upgrade). Never used by the running exchange.
--   licentia_app    what `licentia-server serve --db postgresql://licentia_app@…` runs as:
--                   SELECT, INSERT, UPDATE, DELETE on the tables, the sequences, the
--                   store's functions. It cannot create, drop, alter or truncate anything.
-- The script can be run again: it creates what is missing and grants again.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'licentia_owner') THEN
        CREATE ROLE licentia_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'licentia_app') THEN
        CREATE ROLE licentia_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO licentia_owner, licentia_app',
                   current_database());
END
$$;

-- Nobody creates anything in the public schema; the exchange's tables live in their own.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
CREATE SCHEMA IF NOT EXISTS licentia AUTHORIZATION licentia_owner;
REVOKE ALL ON SCHEMA licentia FROM PUBLIC;
GRANT USAGE ON SCHEMA licentia TO licentia_app;
ALTER ROLE licentia_owner SET search_path = licentia;
ALTER ROLE licentia_app SET search_path = licentia;

-- What the owner creates from now on (migrations) is the app's to read and write...
ALTER DEFAULT PRIVILEGES FOR ROLE licentia_owner IN SCHEMA licentia
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO licentia_app;
ALTER DEFAULT PRIVILEGES FOR ROLE licentia_owner IN SCHEMA licentia
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO licentia_app;
ALTER DEFAULT PRIVILEGES FOR ROLE licentia_owner IN SCHEMA licentia
    GRANT EXECUTE ON FUNCTIONS TO licentia_app;
-- ... and so is what it created before (a database migrated before this script ran).
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA licentia TO licentia_app;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA licentia TO licentia_app;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA licentia TO licentia_app;
