package api

// BodyBytesRead returns the body bytes that requests in progress have read
// (for the tests of package api_test).
func (s *Server) BodyBytesRead() int64 { return s.limits.read.Load() }
