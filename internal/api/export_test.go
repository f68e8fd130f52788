package api

// BodyBytesHeld returns the bytes of the body budget that requests in
// progress hold (for the tests of package api_test).
func (s *Server) BodyBytesHeld() int64 { return s.limits.inUse() }
