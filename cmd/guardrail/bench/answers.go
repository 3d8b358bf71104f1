package main

import (
	"math/rand/v2"
	"strings"
	"unicode/utf8"
)

// Ordinary answers for the time-to-first-token measurement: what a chat
// model writes when nothing in it is sensitive, in English and in Chinese,
// with the numbers, dates, names and punctuation that answers have.
var englishAnswers = []string{
	"Sure! Here's a quick overview of the two regions. cn-north-1 is operated by Sinnet in Beijing, and cn-northwest-1 is operated by NWCD in Ningxia.",
	"The capital of France is Paris. It has been the capital since the 10th century, with a short break during the Second World War.",
	"To install the package, run pip install requests, then import it in your script and call requests.get with the URL you want to fetch.",
	"Great question. The main difference between a process and a thread is that threads share the same memory space, while processes do not.",
	"In 2023 the company reported revenue of 4.2 billion dollars, up 12 percent from the previous year, driven mostly by its cloud business.",
	"First, preheat the oven to 180 degrees. Then mix the flour, sugar and eggs in a large bowl until the batter is smooth.",
	"Let me think about this step by step. We have 3 apples and we buy 5 more, so we have 8 apples in total.",
	"Here is a short poem about autumn: the leaves turn gold, the evenings cool, and the river carries the last warm light.",
	"Kubernetes schedules pods onto nodes based on resource requests, taints and tolerations, and affinity rules that you define.",
	"Okay, so the user wants a summary of the meeting. The key points were the budget, the hiring plan and the launch date in March.",
	"The error means that the file could not be found. Check that the path is correct and that your program has permission to read it.",
	"Photosynthesis converts light energy into chemical energy, producing glucose and oxygen from carbon dioxide and water.",
}

var chineseAnswers = []string{
	"好的，我们来比较一下这两个区域。北京区域由光环新网运营，宁夏区域由西云数据运营，两者的价格和可用的实例类型略有不同。",
	"嗯，用户问的是如何学习编程。我应该先建议选择一门语言，比如Python，然后通过小项目来练习。",
	"北京是中华人民共和国的首都，也是全国的政治、文化和国际交往中心，有三千多年的建城史。",
	"首先，把烤箱预热到180度。然后把面粉、糖和鸡蛋混合均匀，倒入模具中烤25分钟左右。",
	"这个错误的意思是找不到文件。请检查路径是否正确，以及程序是否有读取该文件的权限。",
	"2023年全年国内生产总值比上年增长5.2%，其中第三产业增加值占比继续提高。",
	"光合作用是植物利用光能，把二氧化碳和水转化为有机物，并释放氧气的过程。",
	"我们一步一步来想：小明有3个苹果，又买了5个，所以他一共有8个苹果。",
	"春天来了，柳树发芽了，小草从地里钻出来，河边的桃花也开得正旺。",
	"要部署这个模型，建议先准备一台带GPU的实例，安装好驱动和vLLM，再下载模型权重并启动服务。",
	"这首诗表达了诗人对故乡的思念之情，语言朴素，意境深远。",
	"会议的主要内容包括预算调整、招聘计划和产品发布时间，发布时间暂定在明年三月。",
}

// tokenize cuts an answer into tokens the way a BPE tokenizer roughly
// does: English words with their leading space (long ones in two pieces),
// punctuation on its own; Chinese one or two characters at a time.
func tokenize(rng *rand.Rand, s string) []string {
	var out []string
	for s != "" {
		r, size := utf8.DecodeRuneInString(s)
		switch {
		case r >= 0x4E00 && r <= 0x9FFF || r >= 0x3000 && r <= 0x303F || r >= 0xFF00 && r <= 0xFFEF:
			n := size
			if r2, size2 := utf8.DecodeRuneInString(s[size:]); rng.IntN(2) == 0 && r2 >= 0x4E00 && r2 <= 0x9FFF {
				n += size2
			}
			out = append(out, s[:n])
			s = s[n:]
		default:
			// A word: optional leading space, then letters or digits.
			i := 0
			if s[0] == ' ' {
				i = 1
			}
			j := i
			for j < len(s) && (s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			if j == i {
				_, sz := utf8.DecodeRuneInString(s[i:])
				j = i + sz
			}
			if j-i > 7 {
				out = append(out, s[:i+(j-i)/2])
				s = s[i+(j-i)/2:]
				continue
			}
			out = append(out, s[:j])
			s = s[j:]
		}
	}
	return out
}

func joinTokens(ts []string) string { return strings.Join(ts, "") }
