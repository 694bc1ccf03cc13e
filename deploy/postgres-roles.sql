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
--                   per table, only what the store does to it (the list at the end): the
--                   log and the money history (entries, postings, log_nodes, revocations, …)
--                   can be read and appended to, never rewritten or emptied; the list of
--                   applied migrations can only be read. It cannot create, drop, alter or
--                   truncate anything.
-- The script can be run again: it creates what is missing and grants again.
--
-- Run it again after every `licentia-server migrate`: a table a migration adds gets only
-- SELECT and INSERT until then (the default privileges below), and its own grant from the
-- list at the end. A table that is in the schema but not in that list stops the script with
-- an error: a new table gets its line there (in the same change as its migration; the
-- test tests/integration/test_deploy_postgres.py runs this script against every table).

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

-- What the owner creates from now on (migrations) is the app's to read and append to,
-- not to rewrite or empty (an earlier version of this script granted UPDATE and DELETE:
-- take them back); the list at the end grants more where the store needs it.
ALTER DEFAULT PRIVILEGES FOR ROLE licentia_owner IN SCHEMA licentia
    REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON TABLES FROM licentia_app;
ALTER DEFAULT PRIVILEGES FOR ROLE licentia_owner IN SCHEMA licentia
    GRANT SELECT, INSERT ON TABLES TO licentia_app;
-- Sequences (the postings' ids): nextval, never setval (which would need UPDATE).
ALTER DEFAULT PRIVILEGES FOR ROLE licentia_owner IN SCHEMA licentia
    REVOKE UPDATE ON SEQUENCES FROM licentia_app;
ALTER DEFAULT PRIVILEGES FOR ROLE licentia_owner IN SCHEMA licentia
    GRANT USAGE, SELECT ON SEQUENCES TO licentia_app;
ALTER DEFAULT PRIVILEGES FOR ROLE licentia_owner IN SCHEMA licentia
    GRANT EXECUTE ON FUNCTIONS TO licentia_app;
REVOKE UPDATE ON ALL SEQUENCES IN SCHEMA licentia FROM licentia_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA licentia TO licentia_app;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA licentia TO licentia_app;

-- Each table, with what the store does to it (read services/store/: its UPDATE and DELETE
-- statements, ON CONFLICT ... DO UPDATE included). Everything is read (SELECT).
--   append-only: the log, the money history, revocations, reported uses, the exchange's
--     keys and secrets, the list of applied migrations (read only: `migrate` runs as the
--     owner).
--   UPDATE on licences and requests: their state changes (revocation, approval, expiry),
--     and the erasure sweep blanks their personal fields (token, claims, message) in place
--     rather than deleting the row, which the log and the money history point to.
--   UPDATE (licence_id) on log_entries: erasure blanks that one column, nothing else.
--   DELETE where the store deletes: pairings (used or expired), assets and their links
--     (erasure), accesses (erasure), retired issuer keys, released reserves, expired nonces,
--     and every table of ERASED_WITH_ACCOUNT (services/store/_erasure.py): deleting a
--     holder's account (DeleteAccount) deletes her rows there (parties, terms, rules,
--     requests, keys, key changes, pseudonyms, payout destinations, ...).
DO $$
DECLARE
    t record;
    granted text;
BEGIN
    FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'licentia' LOOP
        granted := CASE t.tablename
            WHEN 'licentia_migrations' THEN 'SELECT'
            WHEN 'entries' THEN 'SELECT, INSERT'
            WHEN 'postings' THEN 'SELECT, INSERT'
            WHEN 'log_nodes' THEN 'SELECT, INSERT'
            WHEN 'revocations' THEN 'SELECT, INSERT'
            WHEN 'use_reports' THEN 'SELECT, INSERT'
            WHEN 'key_set_changes' THEN 'SELECT, INSERT, DELETE'
            WHEN 'erased_keys' THEN 'SELECT, INSERT'
            WHEN 'exchange_keys' THEN 'SELECT, INSERT'
            WHEN 'exchange_secrets' THEN 'SELECT, INSERT'
            WHEN 'request_keys' THEN 'SELECT, INSERT'
            WHEN 'pseudonyms' THEN 'SELECT, INSERT, DELETE'
            WHEN 'idempotency_digests' THEN 'SELECT, INSERT'
            WHEN 'log_entries' THEN 'SELECT, INSERT, UPDATE (licence_id)'
            WHEN 'licences' THEN 'SELECT, INSERT, UPDATE'
            WHEN 'requests' THEN 'SELECT, INSERT, UPDATE, DELETE'
            WHEN 'account_keys' THEN 'SELECT, INSERT, UPDATE, DELETE'
            WHEN 'account_logs' THEN 'SELECT, INSERT, UPDATE, DELETE'
            WHEN 'balances' THEN 'SELECT, INSERT, UPDATE'
            WHEN 'counters' THEN 'SELECT, INSERT, UPDATE'
            WHEN 'holder_pending' THEN 'SELECT, INSERT, UPDATE'
            WHEN 'licence_money' THEN 'SELECT, INSERT, UPDATE'
            WHEN 'parties' THEN 'SELECT, INSERT, UPDATE, DELETE'
            WHEN 'payout_destinations' THEN 'SELECT, INSERT, UPDATE, DELETE'
            WHEN 'reserves' THEN 'SELECT, INSERT, UPDATE'
            WHEN 'standing_rules' THEN 'SELECT, INSERT, UPDATE, DELETE'
            WHEN 'status_lists' THEN 'SELECT, INSERT, UPDATE'
            WHEN 'terms' THEN 'SELECT, INSERT, UPDATE, DELETE'
            WHEN 'accesses' THEN 'SELECT, INSERT, DELETE'
            WHEN 'licence_assets' THEN 'SELECT, INSERT, DELETE'
            WHEN 'request_reserves' THEN 'SELECT, INSERT, DELETE'
            WHEN 'assets' THEN 'SELECT, INSERT, UPDATE, DELETE'
            WHEN 'issuer_keys' THEN 'SELECT, INSERT, UPDATE, DELETE'
            WHEN 'pairings' THEN 'SELECT, INSERT, UPDATE, DELETE'
            WHEN 'spent_nonces' THEN 'SELECT, INSERT, UPDATE, DELETE'
        END;
        IF granted IS NULL THEN
            RAISE EXCEPTION 'table licentia.% is not in deploy/postgres-roles.sql''s list: add it with what the store does to it', t.tablename;
        END IF;
        EXECUTE format('REVOKE ALL ON licentia.%I FROM licentia_app', t.tablename);
        EXECUTE format('GRANT %s ON licentia.%I TO licentia_app', granted, t.tablename);
    END LOOP;
END
$$;
