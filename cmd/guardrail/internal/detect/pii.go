package detect

import "strings"

// The built-in detectors are hand-written scanners rather than regexes:
// each needs a checksum, a range table or a context word anyway, RE2 has no
// lookaround for the "not inside a longer number" rule, and one pass over
// the bytes costs a few microseconds for 2 KB. They run on the base view
// (normalize.go), so full-width digits, invisible characters inside a
// number and compatibility forms are read as what they stand for; their
// spans are mapped back to the original text.
//
// Boundaries: a match must not touch an ASCII letter or digit on either
// side, so a phone number is not found inside an order number and a key
// is not found inside a longer token. Chinese characters and punctuation
// are boundaries ("手机13800138000" matches). A grouped form (digits in
// groups joined by separators) must also not be continued by a separator
// and a digit on either side, so that "6222 0200 0000 0000 000" is one card
// number and not, in addition, a shorter one starting at its second group.

// Longest match of each built-in detector in bytes of the base view; with
// boundaryContext this sizes Holdback (the bound a Checker without
// ScanPartial would need).
const (
	maxResidentIDLen = 20 // 6-8-4 grouped with two separators
	maxMobileLen     = 25 // "(0086)  (139)  1234  5678" with two-character separators
	maxBankCardLen   = 23 // 19 digits in groups of 4 with 4 separators
	// maxEmailLen caps addresses at a 64-byte local part, "@" and a 63-byte
	// domain, far beyond real ones (RFC 5321 allows 254).
	maxEmailLen  = 128
	maxIPv4Len   = 15 // "255.255.255.255"
	maxAWSKeyLen = 20 // "AKIA" + 16
)

// boundaryContext is how far past the end of a match a detector looks: one
// UTF-8 rune for the word boundary of phrases, two separators and a digit
// for grouped numbers, ".5" after an IPv4 address.
const boundaryContext = 4

// Context windows of the number detectors, in bytes of the base view: how
// far before and after a number its context words are looked for.
const (
	ctxBefore = 36 // 12 Chinese characters, or "my credit card number is "
	ctxAfter  = 27 // 9 Chinese characters: "…是我的银行卡号"
)

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// isNumSep is a separator people put between the digit groups of a phone
// number: space, dash, dot.
func isNumSep(c byte) bool { return c == ' ' || c == '-' || c == '.' }

// sepLen is the length of the separator run (one or two of isNumSep) at p.
func sepLen(s string, p int) int {
	n := 0
	for p+n < len(s) && n < 2 && isNumSep(s[p+n]) {
		n++
	}
	return n
}

// digitRun returns the end of the run of ASCII digits starting at i.
func digitRun(s string, i int) int {
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}

// endOK reports whether a match may end at end: not followed by a letter or
// digit, and, for grouped forms, not by a separator run and a digit.
func endOK(s string, end int, grouped bool) bool {
	if end < len(s) && isAlnum(s[end]) {
		return false
	}
	if grouped {
		if n := sepLen(s, end); n > 0 && end+n < len(s) && isDigit(s[end+n]) {
			return false
		}
	}
	return true
}

// groupStartOK reports whether a grouped form may start at i: not right
// after a digit and a separator run (it would continue that number). The
// caller already knows s[i-1] is not a letter or digit.
func groupStartOK(s string, i int) bool {
	k := i
	for k > 0 && i-k < 2 && isNumSep(s[k-1]) {
		k--
	}
	return !(k < i && k > 0 && isDigit(s[k-1]))
}

// near reports whether one of words occurs in s[from:to] (clamped),
// ignoring ASCII case.
func near(s string, from, to int, words []string) bool {
	from, to = max(from, 0), min(to, len(s))
	if from >= to {
		return false
	}
	w := strings.ToLower(s[from:to])
	for _, x := range words {
		if strings.Contains(w, x) {
			return true
		}
	}
	return false
}

// numCtx is what the words around a number say about it.
type numCtx struct {
	s          string
	start, end int
	final      bool // nothing follows s
}

func (c numCtx) before(words []string) bool { return near(c.s, c.start-ctxBefore, c.start, words) }
func (c numCtx) after(words []string) bool  { return near(c.s, c.end, c.end+ctxAfter, words) }

// afterOpen reports whether a context word after the number could still
// arrive: the text may continue and does not yet reach past the window.
func (c numCtx) afterOpen() bool { return !c.final && c.end+ctxAfter > len(c.s) }

// residentID matches a resident identity card number at token start i:
//
//   - 18 characters (GB 11643-1999): 17 digits and a check character
//     (digit or X), contiguous or grouped 6-8-4; the ISO 7064 MOD 11-2
//     check character, the birth date and the address code are verified;
//   - 15 digits, the first-generation form (6-digit address code, YYMMDD
//     birth date in the 1900s, 3-digit sequence, no check digit),
//     contiguous or grouped 6-6-3, only with a context word (身份证, ID
//     card ...) before or after it: without a check digit, about 1 random
//     15-digit number in 100 has a valid address code and date.
//
// pending is true when the decision waits for context that may still come.
func residentID(s string, i int, final bool) (end int, ok, pending bool) {
	var id [18]byte
	j := digitRun(s, i)
	n := 0
	grouped := false
	switch {
	case j-i == 18:
		n, end = copy(id[:], s[i:j]), j
	case j-i == 17 && j < len(s) && (s[j] == 'X' || s[j] == 'x'):
		n, end = copy(id[:], s[i:j+1]), j+1
	case j-i == 15:
		n, end = copy(id[:], s[i:j]), j
	case j-i == 6 && j+1 < len(s) && (s[j] == ' ' || s[j] == '-'):
		sep := s[j]
		if !groupStartOK(s, i) {
			return 0, false, false
		}
		k := j + 1
		g := digitRun(s, k)
		switch g - k {
		case 8: // 6-8-4
			if g >= len(s) || s[g] != sep {
				return 0, false, false
			}
			m := g + 1
			last := digitRun(s, m)
			switch {
			case last == m+4:
				end = last
			case last == m+3 && last < len(s) && (s[last] == 'X' || s[last] == 'x'):
				end = last + 1
			default:
				return 0, false, false
			}
			n = copy(id[:6], s[i:j])
			n += copy(id[6:14], s[k:g])
			n += copy(id[14:], s[m:end])
		case 6: // 6-6-3
			if g >= len(s) || s[g] != sep || digitRun(s, g+1) != g+4 {
				return 0, false, false
			}
			end = g + 4
			n = copy(id[:6], s[i:j])
			n += copy(id[6:12], s[k:g])
			n += copy(id[12:15], s[g+1:end])
		default:
			return 0, false, false
		}
		grouped = true
	default:
		return 0, false, false
	}
	if !endOK(s, end, grouped) || !validRegion(id[:6]) {
		return 0, false, false
	}
	if n == 18 {
		return end, validResidentID(&id), false
	}
	// First generation: 19YYMMDD.
	var date [8]byte
	date[0], date[1] = '1', '9'
	copy(date[2:], id[6:12])
	year, month, day := atoi(date[0:4]), atoi(date[4:6]), atoi(date[6:8])
	if month < 1 || month > 12 || day < 1 || day > daysIn(year, month) {
		return 0, false, false
	}
	c := numCtx{s: s, start: i, end: end, final: final}
	if c.before(residentIDWords) || c.after(residentIDWords) {
		return end, true, false
	}
	return 0, false, c.afterOpen()
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

// mobile matches a mainland mobile number at token start i (a digit), in
// the forms people write:
//
//	13912345678   139 1234 5678   139-1234-5678   139.1234.5678
//	139-1234 5678 (mixed separators)   139 12345678   1391234 5678
//	(139) 1234 5678   +86 139 1234 5678   +86 (139) 1234-5678
//	(+86) 13912345678   0086-139-1234-5678   8613912345678
//
// Separators are one or two of space, dash and dot. The number must be on
// an allocated prefix (allocatedMobile), and is not taken when a word
// before it says it is something else (订单号, serial, ...) unless a phone
// word (手机, tel, ...) is there too. start may lie before i: the + or (
// of the prefix.
func mobile(s string, i int) (start, end int, ok bool) {
	// With a country code: [(][+]86 or 0086 [)], separators, the number.
	for _, cc := range [...]string{"0086", "86"} {
		if !strings.HasPrefix(s[i:], cc) {
			continue
		}
		start := i
		paren := false
		if cc == "86" && start > 0 && s[start-1] == '+' {
			start--
		}
		if start > 0 && s[start-1] == '(' {
			start--
			paren = true
		}
		q := i + len(cc)
		if paren {
			if q >= len(s) || s[q] != ')' {
				continue
			}
			q++
		}
		q += sepLen(s, q)
		if end, _, ok := mobileBody(s, q, true); ok && mobileContextOK(s, start, end) {
			return start, end, true
		}
	}
	start = i
	parenBody := i > 0 && s[i-1] == '('
	if parenBody {
		start = i - 1
	}
	end, groups, ok := mobileBody(s, start, parenBody)
	if !ok || groups > 1 && !groupStartOK(s, start) {
		return 0, 0, false
	}
	return start, end, mobileContextOK(s, start, end)
}

func mobileContextOK(s string, start, end int) bool {
	c := numCtx{s: s, start: start, end: end}
	return !c.before(notPIIWords) || c.before(mobileWords)
}

// mobileBody reads the 11 digits of a mobile number at q, optionally
// starting with a parenthesized first group ("(139) "), and returns its
// end and number of groups.
func mobileBody(s string, q int, parenOK bool) (end, groups int, ok bool) {
	var d [11]byte
	var sizes [3]int
	p, total, ng := q, 0, 0
	paren := parenOK && p < len(s) && s[p] == '('
	if paren {
		p++
	}
	for {
		g := digitRun(s, p)
		n := g - p
		if n == 0 || total+n > 11 || ng == 3 {
			return 0, 0, false
		}
		copy(d[total:], s[p:g])
		total += n
		sizes[ng] = n
		ng++
		p = g
		if paren {
			if p >= len(s) || s[p] != ')' || ng != 1 {
				return 0, 0, false
			}
			paren = false
			p++
			p += sepLen(s, p)
			if p >= len(s) || !isDigit(s[p]) {
				return 0, 0, false
			}
			continue
		}
		if total == 11 {
			break
		}
		k := sepLen(s, p)
		if k == 0 || p+k >= len(s) || !isDigit(s[p+k]) {
			return 0, 0, false
		}
		p += k
	}
	switch {
	case ng == 1:
	case ng == 2 && (sizes[0] == 3 && sizes[1] == 8 || sizes[0] == 7 && sizes[1] == 4):
	case ng == 3 && sizes[0] == 3 && sizes[1] == 4 && sizes[2] == 4:
	default:
		return 0, 0, false
	}
	if !allocatedMobile(d[:]) || !endOK(s, p, ng > 1) {
		return 0, 0, false
	}
	return p, ng, true
}

// bankCard matches a payment card number at token start i: 13 to 19
// digits with a valid Luhn check digit, contiguous, in groups of 4 joined
// by one space or dash (the last group may be shorter: 19-digit UnionPay
// cards are written 4-4-4-4-3), or 4-6-5 (American Express) or 4-6-4
// (Diners Club). Luhn alone passes 1 random number in 10, so the number
// must also fit an issuer's prefix and length (knownIssuer: UnionPay 62,
// Visa 4, Mastercard 51-55 and 2221-2720, ...), with no word before it that
// says it is something else (订单号, tracking, ...), or have a card word
// (卡号, 银行卡, card, ...) before or after it. pending is true when the
// decision waits for context that may still come.
func bankCard(s string, i int, final bool) (end int, ok, pending bool) {
	var digits [19]byte
	n := 0
	grouped := false
	j := digitRun(s, i)
	switch {
	case j-i >= 13 && j-i <= 19:
		n, end = copy(digits[:], s[i:j]), j
	case j-i == 4 && j+1 < len(s) && (s[j] == ' ' || s[j] == '-') && isDigit(s[j+1]):
		sep := s[j]
		if !groupStartOK(s, i) {
			return 0, false, false
		}
		n = copy(digits[:], s[i:j])
		var sizes []int
		for p := j + 1; ; {
			g := digitRun(s, p)
			size := g - p
			if size > 6 || n+size > 19 {
				return 0, false, false
			}
			n += copy(digits[n:], s[p:g])
			sizes = append(sizes, size)
			if g+1 < len(s) && s[g] == sep && isDigit(s[g+1]) && size >= 4 {
				p = g + 1
				continue
			}
			end = g
			break
		}
		if !cardGrouping(sizes) {
			return 0, false, false
		}
		grouped = true
	default:
		return 0, false, false
	}
	if n < 13 || !endOK(s, end, grouped) || !luhn(digits[:n]) {
		return 0, false, false
	}
	c := numCtx{s: s, start: i, end: end, final: final}
	if c.before(cardWords) || c.after(cardWords) {
		return end, true, false
	}
	if knownIssuer(digits[:n]) && !c.before(notPIIWords) {
		return end, true, false
	}
	return 0, false, c.afterOpen()
}

// cardGrouping accepts the groups after a first group of 4: 4-4-4[-1..4]
// (13 to 19 digits), 6-5 (American Express 15) and 6-4 (Diners Club 14).
func cardGrouping(sizes []int) bool {
	if len(sizes) == 2 && sizes[0] == 6 && (sizes[1] == 5 || sizes[1] == 4) {
		return true
	}
	for k, size := range sizes {
		if size == 6 || size > 4 || k < len(sizes)-1 && size != 4 {
			return false
		}
	}
	return len(sizes) >= 2
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
	if !endOK(s, p, false) || p+1 < len(s) && s[p] == '.' && isDigit(s[p+1]) {
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
		if ok && endOK(s, end, false) {
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

// openNumber returns where a trailing run of the base view that could
// still grow into (or change) a number match starts: digit groups joined
// by separators, with the + and parentheses of a prefix, at most maxLen
// bytes back; a trailing "+" or "(" alone too ("tel: +" may become
// "tel: +86 139…"). len(s) when the text does not end in one.
func openNumber(s string, maxLen int) int {
	punct := func(c byte) bool { return isNumSep(c) || c == '(' || c == ')' || c == '+' }
	r := len(s)
	k := r
	for k > 0 && r-k < 3 && punct(s[k-1]) {
		k--
	}
	tail := k
	if k > 1 && (s[k-1] == 'X' || s[k-1] == 'x') && isDigit(s[k-2]) {
		k-- // the check character of a resident ID
	}
	for {
		d := k
		for d > 0 && isDigit(s[d-1]) {
			d--
		}
		if d == k {
			break
		}
		r = d
		if len(s)-r > maxLen {
			break
		}
		k = r
		for k > 0 && r-k < 3 && punct(s[k-1]) {
			k--
		}
	}
	if r == len(s) {
		if i := strings.IndexAny(s[tail:], "+("); i >= 0 {
			return tail + i
		}
		return r
	}
	for r > 0 && (s[r-1] == '+' || s[r-1] == '(') && len(s)-r < maxLen {
		r--
	}
	return max(r, len(s)-maxLen)
}

// openRun returns where the trailing run of bytes for which in is true
// starts, at most maxLen bytes back; len(s) when s does not end in one.
func openRun(s string, maxLen int, in func(byte) bool) int {
	r := len(s)
	for r > 0 && len(s)-r < maxLen && in(s[r-1]) {
		r--
	}
	return r
}
