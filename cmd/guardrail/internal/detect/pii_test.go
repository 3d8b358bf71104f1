package detect

import (
	"fmt"
	"math/rand"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/policy"
)

type piiCase struct {
	name string
	text string
	want []string // matched substrings, in order; nil for none
}

func runPIICases(t *testing.T, typ policy.PIIType, cases []piiCase) {
	t.Helper()
	e := piiEngine(t, typ)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, matched(e, tc.text), "text %q", tc.text)
		})
	}
}

// Resident ID check characters, computed by hand with the GB 11643-1999
// weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2 and the table "10X98765432"
// indexed by the weighted sum mod 11:
//
//	11010519491231002X: 7+9+0+5+0+20+2+9+24+27+7+18+30+5+0+0+4 = 167;
//	                    167 mod 11 = 2 -> X (the classic sample)
//	440308199901010012: 28+36+0+15+0+32+2+9+54+27+0+9+0+5+0+0+2 = 219;
//	                    219 mod 11 = 10 -> 2
//	110105200002290013: 7+9+0+5+0+20+4+0+0+0+0+18+20+45+0+0+2 = 130;
//	                    130 mod 11 = 9 -> 3 (29 Feb 2000, a leap year)
//	110105190002290017: sum 137, mod 11 = 5 -> 7: checksum right, but
//	                    1900 is not a leap year, so 29 Feb 1900 is invalid
//	110105194902300012: sum 153, mod 11 = 10 -> 2: checksum right, 30 Feb
//	110105194913010010: sum 144, mod 11 = 1 -> 0: checksum right, month 13
func TestResidentID(t *testing.T) {
	runPIICases(t, policy.PIIResidentID, []piiCase{
		{"classic sample", "11010519491231002X", []string{"11010519491231002X"}},
		{"lower-case x", "11010519491231002x", []string{"11010519491231002x"}},
		{"second sample", "440308199901010012", []string{"440308199901010012"}},
		{"leap day 2000", "110105200002290013", []string{"110105200002290013"}},
		{"in Chinese text", "身份证号：11010519491231002X。", []string{"11010519491231002X"}},
		{"grouped 6-8-4 with spaces", "ID 110105 19491231 002X ok", []string{"110105 19491231 002X"}},
		{"grouped 6-8-4 with dashes", "110105-19491231-002X", []string{"110105-19491231-002X"}},
		{"wrong check character", "110105194912310021", nil},
		{"X where a digit is due", "44030819990101001X", nil},
		{"29 Feb 1900", "110105190002290017", nil},
		{"30 Feb 1949", "110105194902300012", nil},
		{"month 13", "110105194913010010", nil},
		{"17 digits", "11010519491231002", nil},
		{"19 digits", "1101051949123100201", nil},
		{"after a digit", "911010519491231002X", nil},
		{"before a digit", "11010519491231002X5", nil},
		{"after letters", "ID11010519491231002X", nil},
		{"before letters", "11010519491231002Xa", nil},
		{"mixed separators", "110105 19491231-002X", nil},
		{"grouped but continued", "110105 19491231 002X 1", nil},
		{"two in a row", "11010519491231002X,440308199901010012", []string{"11010519491231002X", "440308199901010012"}},
		{"full-width", "１１０１０５１９４９１２３１００２Ｘ", []string{"１１０１０５１９４９１２３１００２Ｘ"}},
		{"invisible characters inside", "110105\u200b19491231\u200b002X", []string{"110105\u200b19491231\u200b002X"}},
		// 91: no such province in GB/T 2260, with a right check character
		// (weighted sum 223, mod 11 = 3 -> 9) and birth date.
		{"no such province", "910105194912310029", nil},
		{"first generation with a context word", "身份证号 110105491231002", []string{"110105491231002"}},
		{"first generation, context word after", "110105491231002 是他的身份证", []string{"110105491231002"}},
		{"first generation without a context word", "编号 110105491231002", nil},
		{"first generation, bad date", "身份证 110105491331002", nil},
	})
}

func TestValidRegion(t *testing.T) {
	for code, want := range map[string]bool{
		"110105": true,  // 北京 朝阳
		"440308": true,  // 广东 深圳 盐田
		"429004": true,  // 湖北 省直辖 仙桃
		"810000": true,  // 香港居民居住证
		"830000": true,  // 台湾居民居住证
		"110000": false, // a province is not a county
		"910105": false, // no province 91
		"117105": false, // prefecture 71
		"810101": false, // HK codes are province-wide
	} {
		assert.Equal(t, want, validRegion([]byte(code)), code)
	}
}

// A MOD 11-2 check character catches every single-digit substitution:
// changing digit k by d changes the sum by w_k*d, and as 11 is prime and
// neither w_k nor d (1..9) is a multiple of 11, the sum mod 11 changes.
func TestResidentIDCatchesEverySubstitution(t *testing.T) {
	e := piiEngine(t, policy.PIIResidentID)
	valid := []byte("11010519491231002X")
	for k := 0; k < 17; k++ {
		for d := byte('0'); d <= '9'; d++ {
			if d == valid[k] {
				continue
			}
			id := append([]byte(nil), valid...)
			id[k] = d
			assert.Empty(t, matched(e, string(id)), "%s", id)
		}
	}
}

func TestMobile(t *testing.T) {
	runPIICases(t, policy.PIIMobile, []piiCase{
		{"bare", "13800138000", []string{"13800138000"}},
		{"every second digit 3-9", "13912345678 19912345678", []string{"13912345678", "19912345678"}},
		{"+86", "+8613800138000", []string{"+8613800138000"}},
		{"+86 and a space", "tel +86 13800138000", []string{"+86 13800138000"}},
		{"86 without plus", "8613800138000", []string{"8613800138000"}},
		{"0086 grouped with dashes", "0086-138-0013-8000", []string{"0086-138-0013-8000"}},
		{"+86 grouped with spaces", "+86 138 0013 8000", []string{"+86 138 0013 8000"}},
		{"grouped with spaces", "138 0013 8000", []string{"138 0013 8000"}},
		{"grouped with dashes", "138-0013-8000", []string{"138-0013-8000"}},
		{"in Chinese text", "我的手机号码是13800138000，请回电", []string{"13800138000"}},
		{"second digit 2", "12800138000", nil},
		{"10 digits", "1380013800", nil},
		{"12 digits", "138001380001", nil},
		{"inside a longer number", "913800138000", nil},
		{"after a letter", "a13800138000", nil},
		{"before a letter", "13800138000b", nil},
		{"mixed separators", "138 0013-8000", []string{"138 0013-8000"}},
		{"dotted", "139.1234.5678", []string{"139.1234.5678"}},
		{"3-8", "139 12345678", []string{"139 12345678"}},
		{"7-4", "1391234 5678", []string{"1391234 5678"}},
		{"parenthesized area", "(139) 1234 5678", []string{"(139) 1234 5678"}},
		{"+86 and parentheses", "+86 (139) 1234 5678", []string{"+86 (139) 1234 5678"}},
		{"(+86)", "(+86) 186-1234-5678", []string{"(+86) 186-1234-5678"}},
		{"full-width digits", "手机１３９１２３４５６７８", []string{"１３９１２３４５６７８"}},
		{"invisible characters inside", "138\u200b0013\u200b8000", []string{"138\u200b0013\u200b8000"}},
		{"ideographic space separators", "139\u30001234\u30005678", []string{"139\u30001234\u30005678"}},
		{"unallocated 140", "14012345678", nil},
		{"allocated 145", "14512345678", []string{"14512345678"}},
		{"unallocated 154", "15412345678", nil},
		{"unallocated 160", "16012345678", nil},
		{"allocated 1610", "16101234567", []string{"16101234567"}},
		{"unallocated 174 beyond 17405", "17406123456", nil},
		{"allocated 17405", "17405123456", []string{"17405123456"}},
		{"unallocated 194", "19412345678", nil},
		{"a serial number by its label", "序列号 13912345678", nil},
		{"an order number by its label", "order no. 13912345678", nil},
		{"a label and a phone word", "订单联系电话 13912345678", []string{"13912345678"}},
		{"group continues", "138 0013 8000 1234", nil},
		{"wrong grouping 4-4-3", "1380 0138 000", nil},
		{"prefix with a bad number", "+86 12800138000", nil},
	})
}

// Luhn check digits by hand: from the right, every second digit is
// doubled (and 9 subtracted above 9); the total must be a multiple of 10.
//
//	4111 1111 1111 1111: 4 doubled = 8, seven doubled 1s = 14, eight 1s = 8;
//	                     30 -> valid (the well-known Visa test number)
//	4222222222222 (13):  4 undoubled, six doubled 2s = 24, six 2s = 12;
//	                     40 -> valid
//	6217 0000 0000 000c: a UnionPay-style 62 number; 6 doubled = 12 -> 3,
//	                     2 -> 2, 1 doubled = 2, 7 -> 7, zeros; 14, so
//	                     c = 6 makes 20: 6217000000000006 is valid,
//	                     6217000000000007 is not
//	6222 0200 0000 0000 000 (19 digits): 6 -> 6, 2 doubled = 4, 2 -> 2,
//	                     2 doubled = 4, 0, 2 doubled = 4; 20 -> valid
//	4111 1111 1111 111 (15): 4 -> 4, seven doubled 1s = 14, seven 1s = 7;
//	                     25 -> invalid
func TestBankCard(t *testing.T) {
	runPIICases(t, policy.PIIBankCard, []piiCase{
		{"visa test number", "4111111111111111", []string{"4111111111111111"}},
		{"grouped with spaces", "card 4111 1111 1111 1111.", []string{"4111 1111 1111 1111"}},
		{"grouped with dashes", "4111-1111-1111-1111", []string{"4111-1111-1111-1111"}},
		{"13 digits: Visa, but rare, so a card word is needed", "4222222222222", nil},
		{"13 digits with a card word", "卡号 4222222222222", []string{"4222222222222"}},
		{"card word after the number", "4222222222222 是我的卡号", []string{"4222222222222"}},
		{"Luhn-valid but no issuer: needs a card word", "3141592653589793", nil},
		{"Amex 4-6-5", "3782 822463 10005", []string{"3782 822463 10005"}},
		{"Mastercard 2-series", "2221000000000009", []string{"2221000000000009"}},
		{"an order number by its label", "订单号 4111111111111111", nil},
		{"a label and a card word", "订单支付卡号 4111111111111111", []string{"4111111111111111"}},
		{"full-width", "６２１７０００００００００００６", []string{"６２１７０００００００００００６"}},
		{"unionpay 16", "卡号6217000000000006", []string{"6217000000000006"}},
		{"unionpay 16 without a card word", "6217000000000006", []string{"6217000000000006"}},
		{"unionpay 19 grouped 4-4-4-4-3", "6222 0200 0000 0000 000", []string{"6222 0200 0000 0000 000"}},
		{"unionpay 19 contiguous", "6222020000000000000", []string{"6222020000000000000"}},
		{"luhn fails", "4111111111111112", nil},
		{"unionpay luhn fails", "6217000000000007", nil},
		{"15 digits luhn fails", "4111 1111 1111 111", nil},
		{"12 digits", "422222222222", nil},
		{"20 digits grouped", "4111 1111 1111 1111 0000", nil},
		{"20 digits", "62220200000000000000", nil},
		{"after a letter", "x4111111111111111", nil},
		{"before a letter", "4111111111111111x", nil},
		{"mixed separators", "4111 1111-1111 1111", nil},
		{"double space", "4111  1111 1111 1111", nil},
	})
}

func TestEmail(t *testing.T) {
	local64 := strings.Repeat("a", 64)
	runPIICases(t, policy.PIIEmail, []piiCase{
		{"plain", "a.b@example.com", []string{"a.b@example.com"}},
		{"plus tag and subdomain", "write to user+tag@mail.example.co now", []string{"user+tag@mail.example.co"}},
		{"sentence end", "mail alice@example.com.", []string{"alice@example.com"}},
		{"in Chinese text", "邮箱alice@example.cn谢谢", []string{"alice@example.cn"}},
		{"leading dot dropped", ".a@b.com", []string{"a@b.com"}},
		{"two at signs", "a@b@c.com", []string{"b@c.com"}},
		{"local part of 64", local64 + "@x.io", []string{local64 + "@x.io"}},
		{"local part of 65", "a" + local64 + "@x.io", nil},
		// 64 + "@" + 63 = 128 bytes is the longest address detected (the
		// streaming holdback); one byte more is not an address to us.
		{"128 bytes", local64 + "@" + strings.Repeat("d", 59) + ".com", []string{local64 + "@" + strings.Repeat("d", 59) + ".com"}},
		{"129 bytes", local64 + "@" + strings.Repeat("d", 60) + ".com", nil},
		{"single label", "x@localhost", nil},
		{"one-letter TLD", "x@y.c", nil},
		{"digit in TLD", "x@y.c0m", nil},
		{"trailing dot in local part", "a.@b.com", nil},
		{"double dot", "a..b@c.com", nil},
		{"label starts with dash", "a@-b.com", nil},
		{"label ends with dash", "a@b-.com", nil},
		{"no local part", "@b.com", nil},
	})
}

func TestIPv4(t *testing.T) {
	runPIICases(t, policy.PIIIPv4, []piiCase{
		{"plain", "1.2.3.4", []string{"1.2.3.4"}},
		{"all 255", "255.255.255.255", []string{"255.255.255.255"}},
		{"zeros", "0.0.0.0", []string{"0.0.0.0"}},
		{"with port", "ip:10.0.0.1:8080", []string{"10.0.0.1"}},
		{"CIDR", "10.0.0.0/8", []string{"10.0.0.0"}},
		{"sentence end", "at 1.2.3.4.", []string{"1.2.3.4"}},
		{"in Chinese text", "服务器地址是192.168.1.1，端口", []string{"192.168.1.1"}},
		{"first octet 256", "256.1.1.1", nil},
		{"last octet 256", "1.2.3.256", nil},
		{"leading zero", "01.2.3.4", nil},
		{"four-digit octet", "1234.1.1.1", nil},
		{"three parts", "1.2.3", nil},
		// Decision: a dotted run of five numbers is an OID or a version,
		// not an address followed by a number; neither four of it matches.
		{"five parts", "1.2.3.4.5", nil},
		{"five parts, ending", "5.1.2.3.4", nil},
		{"version prefix", "v1.2.3.4", nil},
		{"followed by a letter", "1.2.3.4a", nil},
	})
}

// netip is an independent oracle for the octet rules (0-255, no leading
// zeros): on random dotted quads, Scan must agree with it.
func TestIPv4AgreesWithNetip(t *testing.T) {
	e := piiEngine(t, policy.PIIIPv4)
	rng := rand.New(rand.NewSource(1))
	octet := func() string {
		switch rng.Intn(4) {
		case 0:
			return fmt.Sprintf("0%d", rng.Intn(100)) // leading zero
		case 1:
			return fmt.Sprint(rng.Intn(300)) // maybe above 255
		default:
			return fmt.Sprint(rng.Intn(256))
		}
	}
	for i := 0; i < 5000; i++ {
		addr := strings.Join([]string{octet(), octet(), octet(), octet()}, ".")
		ip, err := netip.ParseAddr(addr)
		want := err == nil && ip.Is4()
		got := matched(e, " "+addr+" ")
		assert.Equal(t, want, len(got) == 1 && got[0] == addr, "%s", addr)
	}
}

func TestAWSAccessKey(t *testing.T) {
	runPIICases(t, policy.PIIAWSAccessKey, []piiCase{
		{"long-term key (AWS documentation example)", "AKIAIOSFODNN7EXAMPLE", []string{"AKIAIOSFODNN7EXAMPLE"}},
		{"temporary key", "aws_access_key_id=ASIAY34FZKBOKMUTVV7A;", []string{"ASIAY34FZKBOKMUTVV7A"}},
		{"in Chinese text", "密钥AKIAIOSFODNN7EXAMPLE泄露了", []string{"AKIAIOSFODNN7EXAMPLE"}},
		{"19 characters", "AKIAIOSFODNN7EXAMPL", nil},
		{"21 characters", "AKIAIOSFODNN7EXAMPLEX", nil},
		{"after a letter", "xAKIAIOSFODNN7EXAMPLE", nil},
		{"lower-case prefix", "akiaIOSFODNN7EXAMPLE", nil},
		{"lower-case body", "AKIAiosfodnn7example", nil},
		{"other prefix", "AIDAIOSFODNN7EXAMPLE", nil},
		{"overlapping prefixes", "AKIAKIAIOSFODNN7EXAMPLE", nil},
	})
}

func TestCustomRegex(t *testing.T) {
	e := newEngine(t, `
sensitiveInformation:
  regexes:
    - name: EMPLOYEE_ID
      pattern: '\bEMP-[0-9]{6}\b'
      maxLength: 10
      input: ANONYMIZE
      output: OFF
`, "")
	assert.Equal(t, []string{"EMP-123456", "EMP-654321"}, matched(e, "EMP-123456 and (EMP-654321)"))
	assert.Empty(t, matched(e, "EMP-1234567 XEMP-123456"))
	assert.Equal(t, "id {EMPLOYEE_ID}.", e.Mask("id EMP-123456.", e.Scan("INPUT", "id EMP-123456.")))
	// maxLength 10 plus the boundary context; nothing is enabled on output.
	assert.Equal(t, 10+boundaryContext, e.Holdback("INPUT"))
	assert.Equal(t, 0, e.Holdback("OUTPUT"))
	assert.Nil(t, e.Scan("OUTPUT", "EMP-123456"))
}
