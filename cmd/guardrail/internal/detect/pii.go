package detect

import "strings"

// The built-in detectors are hand-written scanners rather than regexes:
// each needs a checksum or range check anyway, RE2 has no lookaround for
// the "not inside a longer number" rule, and a single pass over the bytes
// costs a few microseconds for 2 KB where a handful of regexes would cost
// tens. All work on the original bytes and ASCII digits only.
//
// Boundaries: a match must not touch an ASCII letter or digit on either
// side, so a phone number is not found inside an order number and a key
// is not found inside a longer token. Chinese characters and punctuation
// are boundaries ("手机13800138000" matches). A grouped form (digits in
// groups joined by one space or dash) must also not be continued by the same
// separator and a digit on either side, so that "6222 0200 0000 0000 000"
// is one card number and not, in addition, a shorter one starting at its
// second group.

// Longest match of each built-in detector, in bytes; with boundaryContext
// this sizes the streaming holdback.
const (
	maxResidentIDLen = 20 // 6-8-4 grouped with two separators
	maxMobileLen     = 18 // "0086-138-0013-8000"
	maxBankCardLen   = 23 // 19 digits in groups of 4 with 4 separators
	// maxEmailLen caps addresses at a 64-byte local part, "@" and a 63-byte
	// domain, far beyond real ones. RFC 5321 allows 254, but the email
	// detector sets the streaming holdback, and 254 bytes held back is
	// seconds of delay before a streamed answer's first text.
	maxEmailLen  = 128
	maxIPv4Len   = 15 // "255.255.255.255"
	maxAWSKeyLen = 20 // "AKIA" + 16
)

// boundaryContext is how far past the end of a match any detector looks:
// one UTF-8 rune (up to 4 bytes) for the word boundary of phrases, a
// separator and a digit for grouped numbers, ".5" after an IPv4 address.
// Nothing looks further; what precedes a match is already in the buffer.
const boundaryContext = 4

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func isSep(c byte) bool { return c == ' ' || c == '-' }

// digitRun returns the end of the run of ASCII digits starting at i.
func digitRun(s string, i int) int {
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}

// endOK reports whether a match may end at end: not followed by a letter or
// digit, and, for grouped forms (sep != 0), not by sep and a digit.
func endOK(s string, end int, sep byte) bool {
	if end < len(s) && isAlnum(s[end]) {
		return false
	}
	if sep != 0 && end+1 < len(s) && s[end] == sep && isDigit(s[end+1]) {
		return false
	}
	return true
}

// groupStartOK reports whether a grouped form may start at i: the caller
// already knows s[i-1] is not a letter or digit.
func groupStartOK(s string, i int, sep byte) bool {
	return !(i >= 2 && s[i-1] == sep && isDigit(s[i-2]))
}

// residentID matches a resident identity card number (GB 11643-1999) at
// token start i: 17 digits and a check character (digit or X), either
// contiguous or grouped 6-8-4 ("110105 19491231 002X").
func residentID(s string, i int) (end int, ok bool) {
	var id [18]byte
	j := digitRun(s, i)
	switch {
	case j-i == 18:
		copy(id[:], s[i:j])
		end = j
	case j-i == 17 && j < len(s) && (s[j] == 'X' || s[j] == 'x'):
		copy(id[:], s[i:j+1])
		end = j + 1
	case j-i == 6 && j+1 < len(s) && isSep(s[j]):
		sep := s[j]
		if !groupStartOK(s, i, sep) {
			return 0, false
		}
		k := j + 1
		if digitRun(s, k) != k+8 || k+8 >= len(s) || s[k+8] != sep {
			return 0, false
		}
		m := k + 9
		last := digitRun(s, m)
		switch {
		case last == m+4:
			end = last
		case last == m+3 && last < len(s) && (s[last] == 'X' || s[last] == 'x'):
			end = last + 1
		default:
			return 0, false
		}
		copy(id[:6], s[i:j])
		copy(id[6:14], s[k:k+8])
		copy(id[14:], s[m:end])
		if !endOK(s, end, sep) {
			return 0, false
		}
		return end, validResidentID(&id)
	default:
		return 0, false
	}
	if !endOK(s, end, 0) {
		return 0, false
	}
	return end, validResidentID(&id)
}

var residentIDWeights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

// validResidentID checks the ISO 7064 MOD 11-2 check character and the
// birth date (positions 7-14, YYYYMMDD, a real calendar date from 1900 to
// 2099: anyone alive was born in that range, and the bound keeps the
// result independent of the clock).
func validResidentID(id *[18]byte) bool {
	sum := 0
	for k, w := range residentIDWeights {
		sum += int(id[k]-'0') * w
	}
	check := "10X98765432"[sum%11]
	c := id[17]
	if c == 'x' {
		c = 'X'
	}
	if c != check {
		return false
	}
	year := atoi(id[6:10])
	month := atoi(id[10:12])
	day := atoi(id[12:14])
	return year >= 1900 && year <= 2099 && month >= 1 && month <= 12 && day >= 1 && day <= daysIn(year, month)
}

func atoi[T string | []byte](b T) int {
	n := 0
	for k := 0; k < len(b); k++ {
		n = n*10 + int(b[k]-'0')
	}
	return n
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	default:
		return 31
	}
}

// mobile matches a mainland mobile number at token start i: an optional
// country prefix (+86, 86 or 0086, then optionally one space or dash), then
// 1[3-9] and 9 digits, contiguous or grouped 3-4-4 with one space or dash.
// start is i, or i-1 when the prefix has a plus sign.
func mobile(s string, i int) (start, end int, ok bool) {
	for _, prefix := range [...]string{"0086", "86"} {
		if !strings.HasPrefix(s[i:], prefix) {
			continue
		}
		q := i + len(prefix)
		if q < len(s) && isSep(s[q]) {
			q++
		}
		if end, ok := mobileBody(s, q, false); ok {
			start = i
			if prefix == "86" && i > 0 && s[i-1] == '+' {
				start = i - 1
			}
			return start, end, true
		}
	}
	end, ok = mobileBody(s, i, true)
	return i, end, ok
}

// mobileBody matches the 11-digit number itself at q. bare is true when
// there is no prefix, so the grouped form must not continue a digit group.
func mobileBody(s string, q int, bare bool) (end int, ok bool) {
	if q+1 >= len(s) || s[q] != '1' || s[q+1] < '3' || s[q+1] > '9' {
		return 0, false
	}
	j := digitRun(s, q)
	if j-q == 11 {
		return j, endOK(s, j, 0)
	}
	if j-q != 3 || j >= len(s) || !isSep(s[j]) {
		return 0, false
	}
	sep := s[j]
	if bare && !groupStartOK(s, q, sep) {
		return 0, false
	}
	if digitRun(s, j+1) != j+5 || j+5 >= len(s) || s[j+5] != sep || digitRun(s, j+6) != j+10 {
		return 0, false
	}
	return j + 10, endOK(s, j+10, sep)
}

// bankCard matches a payment card number at token start i: 13 to 19
// digits with a valid Luhn check digit, contiguous or in groups of 4 joined
// by one space or dash (the last group may be shorter: 19-digit UnionPay
// cards are written 4-4-4-4-3).
func bankCard(s string, i int) (end int, ok bool) {
	var digits [19]byte
	j := digitRun(s, i)
	if n := j - i; n >= 13 && n <= 19 {
		copy(digits[:], s[i:j])
		return j, endOK(s, j, 0) && luhn(digits[:n])
	}
	if j-i != 4 || j+1 >= len(s) || !isSep(s[j]) || !isDigit(s[j+1]) {
		return 0, false
	}
	sep := s[j]
	if !groupStartOK(s, i, sep) {
		return 0, false
	}
	n := copy(digits[:], s[i:j])
	for p := j + 1; ; {
		g := digitRun(s, p)
		size := g - p
		if size > 4 || n+size > 19 {
			return 0, false
		}
		n += copy(digits[n:], s[p:g])
		if size == 4 && g+1 < len(s) && s[g] == sep && isDigit(s[g+1]) {
			p = g + 1
			continue
		}
		end = g
		break
	}
	return end, n >= 13 && endOK(s, end, sep) && luhn(digits[:n])
}

// luhn checks the Luhn (mod 10) check digit, the last digit.
func luhn(d []byte) bool {
	sum := 0
	double := false
	for k := len(d) - 1; k >= 0; k-- {
		v := int(d[k] - '0')
		if double {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		double = !double
	}
	return sum%10 == 0
}

// ipv4 matches a dotted-quad IPv4 address at token start i, with each
// octet 0-255 and no leading zeros (as net/netip parses it: "010" is
// ambiguous between octal and decimal). A dotted run of more than four
// numbers ("1.2.3.4.5", an OID or a version) is not an address, so the
// address must not be preceded by "digit." or followed by ".digit".
func ipv4(s string, i int) (end int, ok bool) {
	if i >= 2 && s[i-1] == '.' && isDigit(s[i-2]) {
		return 0, false
	}
	p := i
	for octet := 0; octet < 4; octet++ {
		if octet > 0 {
			if p >= len(s) || s[p] != '.' {
				return 0, false
			}
			p++
		}
		j := digitRun(s, p)
		switch n := j - p; {
		case n == 0 || n > 3:
			return 0, false
		case n > 1 && s[p] == '0':
			return 0, false
		case atoi(s[p:j]) > 255:
			return 0, false
		}
		p = j
	}
	if !endOK(s, p, 0) || p+1 < len(s) && s[p] == '.' && isDigit(s[p+1]) {
		return 0, false
	}
	return p, true
}

// awsKeys calls emit for every AWS access key ID: AKIA (long-term) or ASIA
// (temporary credentials) and 16 upper-case letters or digits, not inside
// a longer run of letters and digits.
func awsKeys(s string, emit func(start, end int)) {
	// Both prefixes share "A?IA"; one pass over "IA" finds both.
	for off := 0; ; {
		k := strings.Index(s[off:], "IA")
		if k < 0 {
			return
		}
		start := off + k - 2
		off += k + 1
		if start < 0 || s[start] != 'A' || (s[start+1] != 'K' && s[start+1] != 'S') {
			continue
		}
		if start > 0 && isAlnum(s[start-1]) {
			continue
		}
		end := start + maxAWSKeyLen
		if end > len(s) {
			continue
		}
		ok := true
		for p := start + 4; p < end; p++ {
			if c := s[p]; !('A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
				ok = false
				break
			}
		}
		if ok && endOK(s, end, 0) {
			emit(start, end)
		}
	}
}

func isLocalChar(c byte) bool {
	return isAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-'
}

func isLabelChar(c byte) bool { return isAlnum(c) || c == '-' }

// emails calls emit for every e-mail address: a local part of letters,
// digits and ._%+- (1-64 bytes, no leading, trailing or double dot), an
// @, and a domain of at least two labels (letters, digits, inner hyphens)
// whose last label is at least two letters. The local part is taken as far
// left as its characters go; one that is too long is not an address at
// all, rather than shortened to a different one.
func emails(s string, emit func(start, end int)) {
	for off := 0; ; {
		k := strings.IndexByte(s[off:], '@')
		if k < 0 {
			return
		}
		at := off + k
		off = at + 1
		ls := at
		for ls > 0 && isLocalChar(s[ls-1]) {
			ls--
		}
		for ls < at && s[ls] == '.' {
			ls++
		}
		if ls == at || at-ls > 64 || s[at-1] == '.' || strings.Contains(s[ls:at], "..") {
			continue
		}
		p, labels, lastStart := at+1, 0, 0
		ok := true
		for {
			start := p
			for p < len(s) && isLabelChar(s[p]) {
				p++
			}
			if p == start || p-start > 63 || s[start] == '-' || s[p-1] == '-' {
				ok = false
				break
			}
			labels++
			lastStart = start
			if p+1 < len(s) && s[p] == '.' && isLabelChar(s[p+1]) {
				p++
				continue
			}
			break
		}
		if !ok || labels < 2 || p-lastStart < 2 || p-ls > maxEmailLen {
			continue
		}
		for q := lastStart; q < p; q++ {
			if c := s[q]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
				ok = false
				break
			}
		}
		if ok {
			emit(ls, p)
		}
	}
}
