package awsdev

import "time"

// SetCredentialLifetime sets the lifetime of session credentials issued
// from now on; shorter than AWS allows is allowed (tests use seconds). 0
// restores the requested duration.
func (s *Server) SetCredentialLifetime(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.credLifetime = max(d, 0)
}

// ExpireCredentials makes every session credential issued so far expired.
func (s *Server) ExpireCredentials() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for _, sess := range s.sessions {
		if sess.expires.After(now) {
			sess.expires = now
		}
	}
}
