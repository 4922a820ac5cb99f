-- Free-text search on CN and SANs without scanning every certificate: a
-- trigram GIN index serves `search_text LIKE '%term%'` for terms of three
-- characters or more. pg_trgm ships with PostgreSQL and is a trusted
-- extension: the database owner may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;
CREATE INDEX certificates_by_search_text ON certificates USING gin (search_text public.gin_trgm_ops);
