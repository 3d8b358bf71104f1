package detect

// Reference data of the number detectors. Each table says where it comes
// from; what could not be checked here is marked UNCONFIRMED.

// allocatedMobile reports whether d, 11 ASCII digits, is a mainland mobile
// number on an allocated prefix. The ranges are libphonenumber's
// nationalNumberPattern for CN <mobile> in
// resources/PhoneNumberMetadata.xml (google/libphonenumber at commit
// f7e3e88c92b905c8d6edb81f336dbe25edc05b52, 2026-07-17):
//
//	1(?:610\d|740[0-5])\d{6} |
//	1(?:[38]\d|4[57]|[59][0-35-9]|6[25-7]|7[0-35-8])\d{8}
//
// so 13x, 14[57], 15[0-35-9], 162, 16[5-7], 17[0-35-8], 18x, 19[0-35-9],
// plus 1610x and 17400-17405. Not mobile there: 10x-12x, 140-144, 146,
// 148-149 (data-only and IoT numbers), 154, 160-161 (but 1610), 163-164,
// 168-169, 174 (but 17400-5), 179, 194.
func allocatedMobile(d []byte) bool {
	if len(d) != 11 || d[0] != '1' {
		return false
	}
	switch a, b := d[1], d[2]; a {
	case '3', '8':
		return true
	case '4':
		return b == '5' || b == '7'
	case '5', '9':
		return b != '4'
	case '6':
		return b == '2' || b >= '5' && b <= '7' || b == '1' && d[3] == '0'
	case '7':
		return b <= '3' || b >= '5' && b <= '8' || b == '4' && d[3] == '0' && d[4] <= '5'
	}
	return false
}

// issuer is a payment card scheme's prefix range and the lengths a card of
// it has. The table follows the issuer identification number table of
// Wikipedia's "Payment card number" article (ISO/IEC 7812 IIN ranges as
// the schemes publish them), restricted to lengths that are common enough
// to accept without a context word: a Luhn-valid number that fits no entry
// here is a card only with a context word (卡号, card, ...) nearby.
type issuer struct {
	name    string
	lo, hi  int // prefix range, inclusive, over the first len(digits of lo) digits
	digits  int // how many leading digits lo and hi cover
	lengths []int
}

var issuers = []issuer{
	{"Visa", 4, 4, 1, []int{16}}, // 13 and 19 digits exist but are rare: context needed
	{"Mastercard", 51, 55, 2, []int{16}},
	{"Mastercard", 2221, 2720, 4, []int{16}},
	{"American Express", 34, 34, 2, []int{15}},
	{"American Express", 37, 37, 2, []int{15}},
	{"UnionPay", 62, 62, 2, []int{16, 17, 18, 19}},
	{"JCB", 3528, 3589, 4, []int{16}},
	{"Discover", 6011, 6011, 4, []int{16}},
	{"Discover", 644, 649, 3, []int{16}},
	{"Discover", 65, 65, 2, []int{16}},
	{"Diners Club", 36, 36, 2, []int{14}},
	{"Diners Club", 300, 305, 3, []int{14}},
	{"Mir", 2200, 2204, 4, []int{16}},
}

// knownIssuer reports whether the card digits d fit an issuer's prefix and
// length.
func knownIssuer(d []byte) bool {
	for _, is := range issuers {
		if len(d) < is.digits {
			continue
		}
		p := atoi(d[:is.digits])
		if p < is.lo || p > is.hi {
			continue
		}
		for _, l := range is.lengths {
			if l == len(d) {
				return true
			}
		}
	}
	return false
}

// provinces are the first two digits of a resident ID's address code: the
// province-level codes of GB/T 2260-2007 (中华人民共和国行政区划代码; §3.2:
// digits 1-2 are the province, 3-4 the prefecture, 5-6 the county), plus 83,
// which the residence permits of Taiwan residents use (830000), like 81
// and 82 for Hong Kong and Macao. 71 (Taiwan) is in GB/T 2260 but no
// mainland ID carries it; it is accepted anyway, as the standard lists it.
var provinces = map[string]bool{
	"11": true, "12": true, "13": true, "14": true, "15": true, // 北京 天津 河北 山西 内蒙古
	"21": true, "22": true, "23": true, // 辽宁 吉林 黑龙江
	"31": true, "32": true, "33": true, "34": true, "35": true, "36": true, "37": true, // 上海 江苏 浙江 安徽 福建 江西 山东
	"41": true, "42": true, "43": true, "44": true, "45": true, "46": true, // 河南 湖北 湖南 广东 广西 海南
	"50": true, "51": true, "52": true, "53": true, "54": true, // 重庆 四川 贵州 云南 西藏
	"61": true, "62": true, "63": true, "64": true, "65": true, // 陕西 甘肃 青海 宁夏 新疆
	"71": true, "81": true, "82": true, "83": true, // 台湾 香港 澳门, 台湾居民居住证
}

// validRegion checks the 6-digit address code of a resident ID: a province
// from provinces, and below it either a prefecture code of GB/T 2260-2007
// §3.2 (01-70; 90 for the county-level units a province governs directly,
// such as 4290 in Hubei) with a county code other than 00, or, for 81, 82
// and 83, the province-wide code 0000 that the residence permits of Hong
// Kong, Macao and Taiwan residents carry.
func validRegion(c []byte) bool {
	if !provinces[string(c[:2])] {
		return false
	}
	if c[0] == '8' {
		return string(c[2:6]) == "0000"
	}
	pref, county := atoi(c[2:4]), atoi(c[4:6])
	return (pref >= 1 && pref <= 70 || pref == 90) && county >= 1
}

// Context words, lower-case, looked for in the base view near a number.
// A card or first-generation ID needs a positive word when its digits
// alone do not say enough; a negative word says the number is something
// else (an order, a parcel, a serial) unless a positive word says
// otherwise.
var (
	cardWords = []string{
		"卡号", "银行卡", "信用卡", "借记卡", "储蓄卡", "银联", "卡的号码", "银行账号", "银行帐号", "开户",
		"card", "visa", "mastercard", "unionpay", "amex", "pan:",
	}
	residentIDWords = []string{
		"身份证", "证件号", "身份号码", "公民身份", "居民身份", "证件号码",
		"id card", "identity card", "resident id", "national id", "id no", "id number",
	}
	mobileWords = []string{
		"手机", "电话", "联系", "致电", "拨打", "短信", "微信", "号码",
		"phone", "mobile", "cell", "tel", "call", "sms", "wechat", "whatsapp", "contact",
	}
	notPIIWords = []string{
		"订单", "单号", "运单", "快递", "物流", "序列号", "流水号", "编号", "工单", "交易号", "批次", "型号", "发票", "时间戳", "版本", "条码", "追踪",
		"order", "tracking", "invoice", "serial", "timestamp", "transaction", "txn", "sku", "isbn", "build", "version", "ticket", "s/n",
	}
)
