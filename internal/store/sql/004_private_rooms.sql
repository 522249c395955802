-- parley:rerun
-- Private rooms joined: each one's display name, its current secret and
-- key epoch, and its creator (the one peer whose rekey members accept).
-- The secret is key material: the data directory is 0700 and the
-- database is never logged.
CREATE TABLE IF NOT EXISTS private_rooms (
	name    TEXT    NOT NULL PRIMARY KEY,
	secret  BLOB    NOT NULL,
	epoch   INTEGER NOT NULL,
	creator TEXT    NOT NULL
);
