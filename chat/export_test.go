package chat

// OutboxTracked counts the peers the DM outbox keeps state for.
func OutboxTracked(s *Service) int { return s.outbox.tracked() }
