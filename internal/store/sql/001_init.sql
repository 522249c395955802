-- Room messages as received: the signed GossipSub message (raw) is kept so
-- that history served to others can be verified against its author.
CREATE TABLE room_messages (
	id          TEXT    NOT NULL PRIMARY KEY,
	room        TEXT    NOT NULL,
	author      TEXT    NOT NULL,
	nick        TEXT    NOT NULL,
	body        TEXT    NOT NULL,
	sent_at_ms  INTEGER NOT NULL,
	lamport     INTEGER NOT NULL,
	stored_at_ms INTEGER NOT NULL,
	raw         BLOB    NOT NULL
);
-- The one order of a room's history on every node.
CREATE INDEX room_messages_order ON room_messages (room, sent_at_ms, lamport, id);

-- Direct messages received: also the persistent duplicate filter.
CREATE TABLE dm_inbox (
	sender      TEXT    NOT NULL,
	id          TEXT    NOT NULL,
	nick        TEXT    NOT NULL,
	body        TEXT    NOT NULL,
	sent_at_ms  INTEGER NOT NULL,
	stored_at_ms INTEGER NOT NULL,
	PRIMARY KEY (sender, id)
);

-- Direct messages sent: pending until the receiver acknowledges.
CREATE TABLE dm_outbox (
	id              TEXT    NOT NULL PRIMARY KEY,
	recipient       TEXT    NOT NULL,
	nick            TEXT    NOT NULL,
	body            TEXT    NOT NULL,
	sent_at_ms      INTEGER NOT NULL,
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_ms INTEGER NOT NULL,
	delivered_at_ms INTEGER,
	failed          TEXT
);
CREATE INDEX dm_outbox_pending ON dm_outbox (recipient, sent_at_ms) WHERE delivered_at_ms IS NULL AND failed IS NULL;
