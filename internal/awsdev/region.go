package awsdev

import (
	"crypto/x509"
	"fmt"
	"time"
)

// This file holds what a Region shares with its Server, and the Server's
// data methods, which act in the home region.

// Name is the region's name, e.g. "eu-west-1".
func (r *Region) Name() string { return r.name }

func (r *Region) now() time.Time { return r.s.now() }

// authorize checks an action on a resource of this region; IAM is global.
// The data lock is held.
func (r *Region) authorize(p *principal, action, resource string) *apiError {
	return r.s.authorize(p, action, resource)
}

// CreateSecret is Region.CreateSecret in the home region.
func (s *Server) CreateSecret(name, value string) (arn string, err error) {
	return s.home.CreateSecret(name, value)
}

// CreateBinarySecret is Region.CreateBinarySecret in the home region.
func (s *Server) CreateBinarySecret(name string, value []byte) (arn string, err error) {
	return s.home.CreateBinarySecret(name, value)
}

// PutSecretValue is Region.PutSecretValue in the home region.
func (s *Server) PutSecretValue(secretID, value string, stages ...string) (versionID string, err error) {
	return s.home.PutSecretValue(secretID, value, stages...)
}

// DeleteSecret is Region.DeleteSecret in the home region.
func (s *Server) DeleteSecret(secretID string) error { return s.home.DeleteSecret(secretID) }

// SecretVersions is Region.SecretVersions in the home region.
func (s *Server) SecretVersions(secretID string) ([]SecretVersion, error) {
	return s.home.SecretVersions(secretID)
}

// PutParameter is Region.PutParameter in the home region.
func (s *Server) PutParameter(name, typ, value string) (version int64, err error) {
	return s.home.PutParameter(name, typ, value)
}

// LabelParameterVersion is Region.LabelParameterVersion in the home region.
func (s *Server) LabelParameterVersion(name string, version int64, labels ...string) error {
	return s.home.LabelParameterVersion(name, version, labels...)
}

// DeleteParameter is Region.DeleteParameter in the home region.
func (s *Server) DeleteParameter(name string) error { return s.home.DeleteParameter(name) }

// CreateTrustAnchor is Region.CreateTrustAnchor in the home region.
func (s *Server) CreateTrustAnchor(ca *x509.Certificate, opts TrustAnchorOptions) string {
	return s.home.CreateTrustAnchor(ca, opts)
}

// CreateProfile is Region.CreateProfile in the home region.
func (s *Server) CreateProfile(opts ProfileOptions) string { return s.home.CreateProfile(opts) }

// SetEnabled enables or disables a trust anchor or a profile by ARN, in
// whichever region holds it.
func (s *Server) SetEnabled(arn string, enabled bool) error {
	for _, name := range s.regionList {
		if err := s.regions[name].SetEnabled(arn, enabled); err == nil {
			return nil
		}
	}
	return fmt.Errorf("awsdev: no trust anchor or profile %s", arn)
}
