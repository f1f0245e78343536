package app

import (
	"github.com/hookline/hookline/internal/endpoints"
)

// useSecretKeys makes the registry encrypt secrets at rest with the
// configured key, or warns that they are stored in plaintext.
func (s *Service) useSecretKeys(reg *endpoints.Registry, topic string) error {
	keys, err := s.cfg.SecretKeys()
	if err != nil {
		return err
	}
	if keys == nil {
		s.log.Warn("no secret_key configured: endpoint signing secrets are stored in plaintext in the endpoints topic; set HOOKLINE_SECRET_KEY or secret_key_file (see docs/security.md)", "topic", topic)
		return nil
	}
	box, err := endpoints.NewSecretBox(keys)
	if err != nil {
		return err
	}
	reg.UseSecretBox(box)
	s.log.Info("endpoint secrets encrypted at rest", "topic", topic, "key_id", endpoints.KeyID(keys[0]), "decrypt_keys", len(keys))
	return nil
}
