package auth_test

import (
	"strings"
	"testing"

	"github.com/vitalgate/vitalgate/auth"
)

// fast keeps tests quick; production uses DefaultHashParams.
var fast = auth.HashParams{Memory: 64, Time: 1, Threads: 1}

func TestHashAndVerify(t *testing.T) {
	secret, err := auth.NewSecret(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) != 43 {
		t.Fatalf("secret length %d, want 43", len(secret))
	}
	hash, err := auth.HashSecret(secret, fast, nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(hash, secret) || !strings.HasPrefix(hash, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("unexpected hash form %q", hash)
	}
	tests := []struct {
		name   string
		hash   string
		secret string
		ok     bool
		err    bool
	}{
		{"right secret", hash, secret, true, false},
		{"wrong secret", hash, secret + "x", false, false},
		{"empty secret", hash, "", false, false},
		{"not a hash", "plaintext", secret, false, true},
		{"bcrypt", "$2a$10$abcdefghijklmnopqrstuv", secret, false, true},
		{"huge memory", strings.Replace(hash, "m=64", "m=99999999", 1), secret, false, true},
		{"bad salt", strings.Replace(hash, "$m=64,t=1,p=1$", "$m=64,t=1,p=1$!!!", 1), secret, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := auth.VerifySecret(tt.hash, tt.secret)
			if ok != tt.ok || (err != nil) != tt.err {
				t.Fatalf("VerifySecret = %v, %v; want %v, err=%v", ok, err, tt.ok, tt.err)
			}
		})
	}
}

func TestSecretsDiffer(t *testing.T) {
	a, _ := auth.NewSecret(nil)
	b, _ := auth.NewSecret(nil)
	if a == b {
		t.Fatal("two secrets are equal")
	}
	h1, _ := auth.HashSecret(a, fast, nil)
	h2, _ := auth.HashSecret(a, fast, nil)
	if h1 == h2 {
		t.Fatal("same secret hashed twice gives the same hash: salt not random")
	}
}
