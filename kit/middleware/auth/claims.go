package auth

import (
	"github.com/golang-jwt/jwt/v5"
)

// maxNumericDate bounds the exp, nbf and iat claims a token may carry, in
// seconds either side of the Unix epoch: 9999-12-31T23:59:59Z.
const maxNumericDate = 253402300799

// checkTimeRange returns ErrInvalidToken when an exp, nbf or iat claim of
// claims lies beyond maxNumericDate either way. jwt/v5 turns the seconds
// into an int64 without a range check, so that an nbf of 1e300 wraps to a
// time in the past and a token not valid for ages would pass; claims of a
// wrong type are the parser's to refuse.
func checkTimeRange(claims jwt.MapClaims) error {
	for _, name := range []string{"exp", "nbf", "iat"} {
		if secs, ok := claims[name].(float64); ok && (secs > maxNumericDate || secs < -maxNumericDate) {
			return ErrInvalidToken
		}
	}
	return nil
}
