-- What the user has read: per conversation ("room:NAME" or "dm:PEER"), the
-- time up to which its messages count as read (by when they were stored).
CREATE TABLE read_markers (
	conversation TEXT    NOT NULL PRIMARY KEY,
	read_at_ms   INTEGER NOT NULL
);
-- Conversations and unread counts read these.
CREATE INDEX dm_inbox_by_sender ON dm_inbox (sender, stored_at_ms);
CREATE INDEX dm_outbox_by_recipient ON dm_outbox (recipient, sent_at_ms);
CREATE INDEX room_messages_by_stored ON room_messages (room, stored_at_ms);
