-- parley:rerun (idempotent: 003 was merged first, so a database may be at
-- version 3 without this table)
-- Peers known by nick: the nick each one last announced (in a room
-- message, a presence or a DM; this node's own too) and when it was last
-- seen, so that /dm NICK works after a restart and /peers can list who
-- was seen recently.
CREATE TABLE IF NOT EXISTS known_peers (
	peer         TEXT    NOT NULL PRIMARY KEY,
	nick         TEXT    NOT NULL,
	last_seen_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS known_peers_by_seen ON known_peers (last_seen_ms);
