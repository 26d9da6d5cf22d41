package httpapi

// The validate request, the API's hottest body, is read without
// encoding/json when it is the plain shape every client sends: one object
// whose keys are validateRequest's JSON names spelled exactly, each with a
// string value of printable ASCII without escapes, and nothing after it but
// whitespace. Its fields then hold what encoding/json would have stored
// (the last of repeated keys wins, as there); all of them share one string,
// the body's copy. Anything else (null, numbers, escapes, other spellings,
// unknown keys, trailing data, malformed JSON) goes to decodeJSON's decoder
// unchanged, so its errors and 400 messages stay the decoder's.

// parseValidateRequest reads body into r when it has the plain shape, and
// reports whether it did; r is unchanged when it did not.
func parseValidateRequest(body []byte, r *validateRequest) bool {
	var span [4][2]int // offsets of code, customer, price, subscription
	var seen [4]bool
	i := skipJSONSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return false
	}
	i = skipJSONSpace(body, i+1)
	if i < len(body) && body[i] == '}' {
		i++
	} else {
		for {
			ks, ke, ok := plainJSONString(body, i)
			if !ok {
				return false
			}
			f := validateField(body[ks:ke])
			if f < 0 {
				return false
			}
			i = skipJSONSpace(body, ke+1)
			if i >= len(body) || body[i] != ':' {
				return false
			}
			i = skipJSONSpace(body, i+1)
			vs, ve, ok := plainJSONString(body, i)
			if !ok {
				return false
			}
			span[f], seen[f] = [2]int{vs, ve}, true
			i = skipJSONSpace(body, ve+1)
			if i >= len(body) {
				return false
			}
			if body[i] == '}' {
				i++
				break
			}
			if body[i] != ',' {
				return false
			}
			i = skipJSONSpace(body, i+1)
		}
	}
	if skipJSONSpace(body, i) != len(body) {
		return false
	}
	text := string(body) // the one allocation: every field is a slice of it
	fields := [4]*string{&r.Code, &r.Customer, &r.Price, &r.Subscription}
	for f, ok := range seen {
		if ok {
			*fields[f] = text[span[f][0]:span[f][1]]
		}
	}
	return true
}

// validateField is the index of a validateRequest field by its exact JSON
// name, -1 for any other key.
func validateField(key []byte) int {
	switch string(key) { // no allocation: a comparison
	case "code":
		return 0
	case "customer":
		return 1
	case "price":
		return 2
	case "subscription":
		return 3
	}
	return -1
}

// plainJSONString finds the JSON string at body[i]: its contents are
// body[start:end] and body[end] is its closing quote. ok is false when
// there is no string there, or its contents are not printable ASCII
// without escapes (the decoder's work).
func plainJSONString(body []byte, i int) (start, end int, ok bool) {
	if i >= len(body) || body[i] != '"' {
		return 0, 0, false
	}
	for j := i + 1; j < len(body); j++ {
		switch c := body[j]; {
		case c == '"':
			return i + 1, j, true
		case c < 0x20 || c > 0x7e || c == '\\':
			return 0, 0, false
		}
	}
	return 0, 0, false
}

// skipJSONSpace skips JSON's whitespace from body[i].
func skipJSONSpace(body []byte, i int) int {
	for i < len(body) {
		switch body[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}
