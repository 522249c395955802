-- parley:rerun
-- Whether a sender's previous message is stored (AuthorLamport) is asked
-- for every line that arrives before the one it follows; without this
-- index each ask scanned the room's whole history (19 % of the CPU of a
-- 2,000-message burst, and growing with the history).
CREATE INDEX IF NOT EXISTS room_messages_by_author ON room_messages (room, author, lamport);
