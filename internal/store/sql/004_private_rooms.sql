-- parley:rerun
-- Private rooms joined: each one's display name, its current secret and
-- key epoch, its creator (the one peer whose rekey members accept), and
-- the wire names of its earlier epochs, newest first, space-separated
-- (their history stays stored under them).
-- The secret is key material: the data directory is 0700 and the
-- database is never logged.
CREATE TABLE IF NOT EXISTS private_rooms (
	name    TEXT    NOT NULL PRIMARY KEY,
	secret  BLOB    NOT NULL,
	epoch   INTEGER NOT NULL,
	creator TEXT    NOT NULL,
	previous TEXT   NOT NULL DEFAULT ''
);
