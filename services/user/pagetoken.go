package user

import (
	"encoding/base64"
	"errors"
	"strings"

	"github.com/google/uuid"
)

// pageTokenPrefix versions the page token format: base64url (unpadded) of
// the prefix and the id of the last user on the previous page.
const pageTokenPrefix = "u1:"

// maxPageTokenLen bounds the tokens decodePageToken looks at; real ones are
// 52 bytes.
const maxPageTokenLen = 128

var pageTokenEncoding = base64.RawURLEncoding.Strict()

// errPageToken is returned by decodePageToken for a token that
// encodePageToken did not make.
var errPageToken = errors.New("user: malformed page token")

// encodePageToken returns the token for the page after the user with lastID.
func encodePageToken(lastID string) string {
	return pageTokenEncoding.EncodeToString([]byte(pageTokenPrefix + lastID))
}

// decodePageToken returns the last id encoded in tok, or errPageToken unless
// tok is exactly what encodePageToken returns for a canonical UUID string.
func decodePageToken(tok string) (string, error) {
	if len(tok) > maxPageTokenLen {
		return "", errPageToken
	}
	b, err := pageTokenEncoding.DecodeString(tok)
	if err != nil {
		return "", errPageToken
	}
	id, ok := strings.CutPrefix(string(b), pageTokenPrefix)
	if !ok {
		return "", errPageToken
	}
	u, err := uuid.Parse(id)
	if err != nil || u.String() != id || encodePageToken(id) != tok {
		// The last test rejects the line breaks the decoder skips.
		return "", errPageToken
	}
	return id, nil
}
