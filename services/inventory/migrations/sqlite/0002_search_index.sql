-- Free-text search on CN and SANs without scanning every certificate: an FTS5
-- trigram index over certificates.search_text (external content, keyed by the
-- certificate's rowid), kept in step by triggers. The trigram tokenizer
-- matches any substring of three characters or more.
--
-- A full VACUUM may renumber rowids of a table without an INTEGER PRIMARY KEY;
-- after one, run: INSERT INTO certificates_search(certificates_search) VALUES('rebuild');
CREATE VIRTUAL TABLE certificates_search USING fts5(
    search_text,
    content = 'certificates',
    content_rowid = 'rowid',
    tokenize = 'trigram'
);
INSERT INTO certificates_search (certificates_search) VALUES ('rebuild');

CREATE TRIGGER certificates_search_insert AFTER INSERT ON certificates BEGIN
    INSERT INTO certificates_search (rowid, search_text) VALUES (new.rowid, new.search_text);
END;
CREATE TRIGGER certificates_search_delete AFTER DELETE ON certificates BEGIN
    INSERT INTO certificates_search (certificates_search, rowid, search_text) VALUES ('delete', old.rowid, old.search_text);
END;
CREATE TRIGGER certificates_search_update AFTER UPDATE OF search_text ON certificates BEGIN
    INSERT INTO certificates_search (certificates_search, rowid, search_text) VALUES ('delete', old.rowid, old.search_text);
    INSERT INTO certificates_search (rowid, search_text) VALUES (new.rowid, new.search_text);
END;
