package web

// Routes lists the registered API routes as "METHOD PATH".
func Routes(s *Server) []string {
	out := make([]string, len(s.routes))
	for i, r := range s.routes {
		out[i] = r.Method + " " + r.Path
	}
	return out
}
