package detect

import (
	"fmt"
	"sync"
	"unicode/utf8"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/policy"
)

// Prompt attack detection: the data table of the prompt attack policy.
//
// A fixed phrase list cannot tell "ignore your previous instructions" from
// "ignore the previous print job", nor catch "disregard the rules you were
// given earlier" or "忽略你之前收到的所有规则". So the table has two parts:
//
//   - concepts: named lists of terms (verbs that set rules aside, nouns
//     for the model's rules, qualifiers that point at them, fake system
//     markers, persona openers, "unrestricted" descriptions, device words
//     that make "developer mode" harmless ...). Every term is matched in
//     the phrase view (normalize.go): case, width, accents, spacing, leet
//     and invisible characters do not matter, Latin terms match whole
//     words with plural and -ing/-ed endings.
//   - rules: a sequence of concepts, each starting within gap bytes of the
//     phrase view after the previous one ends (about 8 Chinese characters
//     or 4 to 6 English words for the default 24), with no clause break
//     (, . ; ! ? 。 or a line break) in between unless the rule allows it;
//     and concepts that cancel a match when one occurs within near bytes
//     before or after it ("unless": a phone, Android or Chrome next to
//     "developer mode").
//
// Term syntax: (a|b|c) is a choice, (x)? is optional, \ escapes the next
// character, everything else is literal; a term list expands to plain
// phrases at start-up, which go into the one Aho-Corasick automaton of the
// engine.
//
// The level is the lowest strength at which a rule is enabled:
//
//	LOW     explicit attacks, which have no harmless reading;
//	MEDIUM  also the common jailbreak markers, which are rarely harmless;
//	HIGH    also weak signals that occur in honest questions about LLMs
//	        ("what is a system prompt?"), for deployments that prefer
//	        false positives to misses.
//
// The rules were written against the dev split of the evaluation corpus
// (cmd/guardrail/eval/corpus/dev.jsonl); the held-out split is not used to
// tune them (see cmd/guardrail/README.md for both figures).
type attackConcept struct {
	name  string
	terms []string
}

type attackRule struct {
	level policy.Strength
	name  string
	parts []string
	gap   int // 0: defaultGap
	// crossBreaks lets the parts be in different clauses.
	crossBreaks bool
	unless      []string
	near        int // 0: defaultNear
}

const (
	defaultGap  = 24
	defaultNear = 90
)

var attackConcepts = []attackConcept{
	// --- Setting rules aside ------------------------------------------------
	{"ignore", []string{
		`(ignore|ignoring|disregard|forget|forgetting|override|overriding|overrule|bypass|bypassing|skip|discard|abandon|neglect|circumvent|disable|deactivate|erase|wipe)`,
		`(set|put|throw|cast|push) aside`, `(throw|get rid of|break free from|break out of|step outside|step out of|escape)`,
		`(stop|quit|cease) (following|obeying|adhering to|respecting|listening to)`,
		`(no longer|do not|don't|dont|never|not) (follow|obey|adhere to|respect|comply with|abide by|listen to)`,
		`(no longer|do not|don't|dont|not) (have|need) to (follow|obey|adhere to|respect|comply with|abide by)`,
		`(need not|don't need to|dont need to) (follow|obey|respect)`,
		`(turn|switch) off`, `(drop|remove|lift)`,
	}},
	{"ignore_zh", []string{
		`(忽略|无视|忽视|忘记|忘掉|忘了|抛开|抛弃|放弃|跳过|撇开|丢掉|丢弃|违反|绕过|推翻|越过|突破|摆脱|取消|解除|清除|覆盖|废除)`,
		`(不要|不用|别|不必|无需|不需要)(再)?(理会|管|遵守|遵循|服从|听从|执行|考虑|在意)`,
		`(不再|停止)(遵守|遵循|服从|听从|执行)`,
	}},
	// Qualifiers that point at the model's own, earlier rules.
	{"prior", []string{
		`(your|ur|previous|prior|above|preceding|earlier|initial|original|former|default|built-in|hidden|all|any|every|system|developer|developers|safety)`,
	}},
	{"prior_zh", []string{
		`(之前|以上|上面|前面|先前|此前|以前|原来|原先|原有|原本|最初|最开始|初始|系统|你的|你|所有|全部|一切|那些|这些|默认|给你的|收到的|开发者)`,
	}},
	// Nouns for rules and instructions.
	{"rules", []string{
		`(instruction|instructions|prompt|prompts|rule|rules|guideline|guidelines|direction|directions|directive|directives|programming|constraint|constraints|restriction|restrictions|policy|policies|conditioning|limitation|limitations|safeguard|safeguards|guardrail|guardrails|boundaries|ethics|principles)`,
	}},
	{"rules_zh", []string{
		`(指令|指示|规则|设定|提示|提示词|要求|限制|约束|规定|规范|准则|命令|策略|审查|过滤|道德|政策|人设|身份|内容|对话|原则|底线|协议|守则)`,
	}},
	// Nouns that by themselves name the model's own safety rules.
	{"own_rules", []string{
		`(content|safety|ethical|moral|usage|acceptable use) (policy|policies|guidelines|rules|filter|filters|restrictions|protocols|settings|checks|measures|training)`,
		`(guardrail|guardrails|safeguards|censorship|content filtering|content moderation|alignment|safety filter|safety filters)`,
		`(your|its|the model's|the ai's|openai's|deepseek's) (rules|restrictions|limitations|filters|guidelines|programming|instructions|ethics|morals|principles|policies|constraints)`,
	}},
	{"own_rules_zh", []string{
		`(安全|道德|伦理|内容|审查|过滤|防护)(准则|规则|审查|限制|策略|设置|机制|约束|规定|规范|过滤|模式|原则|措施|协议)`,
		`(你的|开发者给你的|系统的)(限制|规则|约束|设定|准则|指令|审查|底线|原则)`,
		`(内容过滤|内容审查|安全审查|道德约束|道德限制|伦理限制)`,
	}},
	// What comes after the noun and points back at the model's setup.
	{"post_prior", []string{
		`(you|u) (were|have been|are|had been|'ve been) (given|told|trained|programmed|instructed|provided|taught)`,
		`(you|u) (received|got|have|follow|were following|are following|obey)`,
		`(given|told) to you`, `(the|your) (developer|developers|creators|creator|makers|owner|operator|openai|admin) (gave|give|set|wrote|put)`,
		`(above|earlier|so far|until now|up to now|from before|at the start|at the beginning)`,
	}},
	{"continue", []string{`(and|then|instead|&)`}},
	{"ignore_above", []string{`(ignore|disregard|forget) (the |all (of )?the |all )?(above|previous|preceding|prior)`}},
	{"ignore_everything", []string{
		`(ignore|disregard|forget) (everything|anything) (above|before|you were told|you have been told|you've been told|you know|you learned|prior|that came before|up to this point|until now)`,
		`(ignore|disregard|forget) all (of )?(the )?(above|previous|preceding|prior)`,
	}},
	{"ignore_above_zh", []string{`(忽略|无视|忘记|忘掉)(以上|上面|上述|之前|前面)(的)?(内容|对话|所有|全部|一切|文字)`}},
	{"supersede", []string{
		`(new|these|the following|following|my|updated) (instructions|rules|directives|orders|guidelines) (supersede|override|overrule|replace|take precedence over|take priority over)`,
		`(previous|prior|above|earlier|old|original|all) (instructions|rules|directives|guidelines) (are|is) (void|null|cancelled|canceled|invalid|revoked|obsolete|overridden|suspended|lifted|no longer valid|no longer apply)`,
		`new instructions:`, `(之前|以上|原来|原有)的(指令|规则|设定)(已|已经)?(失效|作废|取消|无效)`,
	}},

	// --- System prompt extraction -----------------------------------------------
	{"reveal", []string{
		`(reveal|print|show|output|repeat|display|leak|dump|tell|give|write out|write down|share|disclose|recite|spell out|copy|paste|list|expose|provide|summarize|summarise|return|echo|send|type out|read out|restate|reproduce|paraphrase)`,
	}},
	{"reveal_zh", []string{
		`(输出|打印|显示|告诉我|重复|泄露|透露|给我看|复述|展示|列出|说出|公开|发给我|发我|贴出|原样|一字不差|完整地|逐字|念出|写出|背诵|总结|概括)`,
	}},
	{"ask", []string{`what (is|are|was|were|did|do|does|have)`, `which (rules|instructions)`}},
	{"ask_zh", []string{`(是什么|是啥|有哪些|是怎么写的|写了什么|说了什么|是什么内容)`}},
	{"secret", []string{
		`(your|ur) (system|initial|original|hidden|secret|internal|confidential|first|real|full|complete|exact|entire) (prompt|prompts|message|instructions|instruction|rules|configuration|setup|directives|guidelines)`,
		`(your|ur) (system prompt|system message|pre-prompt|preprompt|programming|configuration|directives)`,
		`(system|initial|hidden|secret|internal|confidential|original|developer|pre|meta) (prompt|instructions|message|directives|configuration|rules)`,
		`(instructions|rules|prompt|text|message|guidelines|directions|directives) (you|u) (were given|received|have received|got|were told|have been given|ve been given|are following|follow)`,
		`(instructions|rules|prompt|guidelines) (the|your) (developer|developers|creator|creators|admin|operator) (gave|give|wrote|set)`,
		`what (the|your) (developer|developers|creator|creators|admin|operator) (told|gave|tell|instructed) you`,
		`what you were (told|given|instructed)`, `your (developer|developers|creator|creators|makers) (told|tell|instructed|instruct) you`,
	}},
	{"above_ref", []string{
		`(above|before) (this|that|my|the|our) (line|message|conversation|chat|prompt|point|question|request|text|sentence)`,
		`(at|from) the (start|beginning|top) of (this|the|our) (chat|conversation|session|context)`,
		`before (this|the|our) (conversation|chat|session) (started|began)`, `before i (started|began) (talking|chatting|writing) to you`,
	}},
	{"words_above", []string{`(repeat|print|output) (the |all (of )?the )?(words|text|lines) above`}},
	{"verbatim", []string{`(word for word|verbatim|exactly|in full|in a code block|character for character|unchanged|as is|as-is)`}},
	{"own_secret", []string{`(your|ur) (instructions|prompt|rules|guidelines|directions)`}},
	{"tech", []string{`(xml|html|json|yaml|tag|tags|parse|parser|python|java|javascript|code|file|regex|template|markdown|api)`}},
	{"secret_zh", []string{
		`(系统提示|系统提示词|系统指令|系统消息|系统设定|初始指令|初始提示|初始设定|隐藏指令|隐藏提示|隐藏的指令|原始指令|原始提示|预设指令|内部指令|开发者指令)`,
		`(你的)(指令|提示词|设定|规则|提示|初始设定|原始设定|配置)`,
		`(开发者|系统)给你的`, `你(最开始|一开始|之前|最初)收到的`, `(对话|聊天)开始(之前|前)`,
		`(上面|以上|之前|前面)(所有|全部)的?(内容|文字|对话)`, `(隐藏|隐含)的(部分|内容)`,
	}},
	{"example", []string{
		`(example|examples|sample|samples|template|templates|tips|best practices|how to write|how do i write|how to create|for a|for an|for my|good|effective|better)`,
		`(例子|示例|样例|模板|怎么写|如何写|写一段|写一个|技巧|好的)`,
	}},

	// --- Fake framing ---------------------------------------------------------
	{"fake_tag", []string{
		`<(/)?(system|sys|admin|developer|instructions|instruction|assistant|user)>`, `<\|(system|user|assistant|im_start|im_end|begin_of_text|end_of_text)\|>`,
		`<\|(user|assistant|system|begin▁of▁sentence|end▁of▁sentence)\|>`, `\[(/)?(system|sys|admin|inst|developer|system note|system message|system prompt)\]`, `<<sys>>`,
		`### (system|instruction|instructions|admin|developer)`, `(system|admin|developer|root) (override|message|notice|note|update|alert|instruction|instructions|command):`,
		`(system|admin|developer|safety|security) override`, `override (code|mode|enabled|activated|granted)`, `(authorization|auth|access|admin|developer|override) code`,
		`(maintenance|debug|test|admin|god|root|sudo|unrestricted) mode`,
		`i am (your|the) (developer|creator|admin|administrator|owner|programmer|operator|maker)`,
	}},
	{"fake_tag_zh", []string{
		`(【|\[)(系统|管理员|开发者|系统通知|系统消息|系统指令|系统提示|系统公告)`, `系统(通知|消息|指令|公告|覆盖|更新|提示)[:：]`, `系统覆盖`,
		`(管理员|开发者|调试|维护|上帝|超级用户|root)模式`, `(最高|管理员|开发者|root)权限`, `授权码`,
		`我是你的(开发者|创造者|管理员|主人|设计者|工程师)`,
	}},
	{"payload", []string{
		`(unrestricted|unfiltered|uncensored|jailbroken|jailbreak)`, `no (restrictions|limitations|limits|rules|filters|censorship|boundaries)`,
		`(restrictions|limitations|limits|filters|safety|safeguards|guardrails|protocols|checks|rules|censorship) (are |is |have been |has been )?(lifted|removed|disabled|off|suspended|deactivated|turned off|bypassed|gone)`,
		`(disable|remove|lift|turn off|bypass|ignore) (all |your |the )?(restrictions|limitations|filters|safety|safeguards|guardrails|protocols|checks|rules|content policy)`,
		`comply with (all|every|any)`, `(all|every|any) (requests|request|questions|instructions)`, `(admin|administrator|root|developer|elevated|full) (privileges|access|rights|permissions)`,
		`(must|will|shall) (comply|obey|answer everything)`,
	}},
	{"payload_zh", []string{
		`(解除|取消|关闭|移除|去掉|绕过)(所有|全部|一切)?的?(限制|审查|过滤|约束|安全)`, `(限制|审查|过滤|约束|安全模式)(已|已经|均已)?(解除|取消|关闭|失效|移除)`,
		`(没有|无|不受)(任何)?(限制|审查|约束|过滤)`, `(所有|任何|一切)(问题|要求|请求|内容)`, `(最高|全部|管理员)权限`, `(必须|只能)(服从|回答|执行)`,
	}},

	// --- Personas --------------------------------------------------------------
	{"persona", []string{
		`(pretend|imagine|suppose|assume|pretending) (that )?(you are|you're|youre|to be|you were|you have|you had|you)`,
		`(act|acting|behave|respond|answer|reply|write|speak|talk) (as|like)`, `(roleplay|role-play|role play|roleplaying) (as|being)`, `play the (role|part) of`,
		`(you are|you're|youre|u r) (now|going to be|going to act as|about to become|no longer)`, `from now on`, `(from|starting) (today|this moment|now)`,
		`you (will|shall|must) (now )?(be|act|behave|respond|answer|pretend)`, `(become|simulate|emulate|impersonate|embody)`,
		`you are an? (ai|assistant|chatbot|bot|model|language model|llm|system|version)`, `(two|2|both|dual) (responses|answers|personas|personalities|versions|modes|outputs)`,
	}},
	{"persona_zh", []string{
		`(扮演|假装|假设你是|想象你是|设想你是|模拟|充当|化身|变成|成为)`, `(你现在是|现在你是|你将是|你就是|你是一个|你是一款|你现在叫|你的名字是|你叫)`,
		`(从现在开始|从现在起|从此刻起|接下来|从今天起)`, `(两个|两种|双重)(回答|回复|人格|身份|版本|模式)`,
	}},
	{"unrestricted", []string{
		`(no|without|zero|free of|free from|freed from|liberated from|released from|unbound by|not bound by|isn't bound by|not restricted by|never bound by|not limited by|exempt from|outside) (any |all |the |its |your )?(restrictions|limitations|limits|rules|filters|filter|guidelines|ethical guidelines|ethics|morals|morality|moral constraints|moral compass|content policy|content policies|censorship|boundaries|constraints|safeguards|policy|policies|inhibitions|conscience)`,
		`(unrestricted|unfiltered|uncensored|unchained|unbound|amoral|immoral|unethical|jailbroken|unlimited|unaligned|lawless|rogue)`,
		`evil (ai|assistant|bot|chatbot|version|twin|confidant|model|mode|persona)`, `(never|doesn't|does not|won't|will not|cannot|can't|don't|do not) (refuse|refuses|decline|declines|say no|apologize)`,
		`(can|will|may) (do|say|answer|write) (anything|everything)`, `do anything now`, `(has|have|had) (no|zero) (rules|limits|restrictions|filters|morals|ethics|boundaries|limitations)`,
		`(broken|broke|breaks) free`, `(ignores|ignore|breaks|break) (all )?(the )?(rules|laws|ethics|guidelines|policies)`, `dan`, `(developer|jailbreak|god|dan|evil|unrestricted) mode`,
	}},
	{"unrestricted_zh", []string{
		`(没有|无|不受|不存在|摆脱了|脱离了|不用遵守|不遵守|无视)(任何)?(的)?(限制|约束|规则|道德|审查|底线|过滤|束缚|伦理|法律|规矩)`,
		`(邪恶|无所不能|毫无底线|没有底线|不受控|无限制|无约束|不设限|没有道德|不讲道德|越狱)`, `(可以|能|会)(做|说|回答)(任何|一切|所有)`, `(不会|永远不|从不|绝不|不能|不要)(拒绝|道歉)`,
		`dan`, `(开发者|越狱|无限制|上帝|邪恶)模式`, `(不受|不接受)(任何)?审查`,
	}},
	{"grandma", []string{`(grandma|grandmother|granny|grandpa|grandfather|奶奶|外婆|姥姥|爷爷|外公)`}},
	{"danger", []string{
		`(napalm|bomb|bombs|explosive|explosives|weapon|weapons|meth|methamphetamine|drugs|poison|nerve agent|malware|ransomware|windows key|windows keys|license key|license keys|serial key|serial keys)`,
		`(炸弹|炸药|凝固汽油弹|燃烧弹|武器|毒品|冰毒|毒药|病毒|激活码|序列号|枪)`,
	}},
	{"story_hook", []string{`(used to|would|always|every night|以前|总是|常常|经常|每天晚上|小时候)`}},

	// --- Developer mode and its harmless neighbours -------------------------------
	{"mode_on", []string{
		`(enter|entering|enable|enabling|activate|activating|switch to|switching to|turn on|turning on|go into|you are in|you're in|now in|unlock)`,
		`(进入|开启|启用|切换到|打开|激活|解锁|处于)`,
	}},
	{"attack_mode", []string{`(developer|dev|jailbreak|jailbroken|god|dan|unrestricted|evil|uncensored|unfiltered|opposite|sudo|debug|maintenance) mode`, `(开发者|越狱|无限制|上帝|邪恶|调试|维护|无审查)模式`}},
	{"mode_enabled", []string{`(developer|jailbreak|dan|god|evil|unrestricted) mode (enabled|activated|on|unlocked|engaged)`, `with (developer|jailbreak|dan) mode`, `(开发者|越狱)模式(已|已经)?(开启|启用|激活|解锁)`}},
	{"ai_context", []string{
		`(you|your answers|your responses|your output|chatgpt|gpt|openai|claude|deepseek|llm|language model|assistant|chatbot|ai)`,
		`(content policy|policies|censorship|any content|anything|restrictions|uncensored|normal response|normal responses|generate|refuse|refusing)`,
		`(你|任何内容|不要拒绝|拒绝|限制|审查|回答|输出|内容政策)`,
	}},
	{"device", []string{
		`(android|phone|iphone|ipad|tablet|samsung|galaxy|pixel|xiaomi|huawei|oppo|vivo|oneplus|chrome|firefox|edge|browser|extension|extensions|windows|xbox|playstation|switch|usb|debugging|settings|build number|smart tv|tv|router|laptop|pc|macos|linux|vs code|vscode|github|game|minecraft|wechat|mini program|app)`,
		`(手机|安卓|苹果|小米|华为|荣耀|三星|设置|调试|小程序|微信|浏览器|插件|扩展|电脑|游戏|平板|系统设置|路由器|电视|应用|版本号)`,
	}},
}

var attackRules = []attackRule{
	// Override, English.
	{level: policy.StrengthLow, name: "ignore-prior-rules", parts: []string{"ignore", "prior", "rules"}},
	{level: policy.StrengthLow, name: "ignore-rules-given", parts: []string{"ignore", "rules", "post_prior"}},
	{level: policy.StrengthLow, name: "ignore-own-rules", parts: []string{"ignore", "own_rules"}},
	{level: policy.StrengthLow, name: "ignore-above-and", parts: []string{"ignore_above", "continue"}, gap: 3},
	{level: policy.StrengthLow, name: "ignore-everything", parts: []string{"ignore_everything"}},
	{level: policy.StrengthLow, name: "supersede", parts: []string{"supersede"}},
	// Override, Chinese.
	{level: policy.StrengthLow, name: "ignore-prior-rules-zh", parts: []string{"ignore_zh", "prior_zh", "rules_zh"}, gap: 18},
	{level: policy.StrengthLow, name: "ignore-own-rules-zh", parts: []string{"ignore_zh", "own_rules_zh"}, gap: 18},
	{level: policy.StrengthLow, name: "ignore-above-zh", parts: []string{"ignore_above_zh"}},

	// Extraction.
	{level: policy.StrengthLow, name: "reveal-secret", parts: []string{"reveal", "secret"}, gap: 30, unless: []string{"example"}, near: 40},
	{level: policy.StrengthLow, name: "reveal-own-verbatim", parts: []string{"reveal", "own_secret", "verbatim"}, gap: 12, crossBreaks: true},
	{level: policy.StrengthMedium, name: "words-above", parts: []string{"words_above"}},
	{level: policy.StrengthLow, name: "ask-secret", parts: []string{"ask", "secret"}, gap: 12},
	{level: policy.StrengthLow, name: "reveal-above", parts: []string{"reveal", "above_ref"}, gap: 36},
	{level: policy.StrengthLow, name: "reveal-secret-zh", parts: []string{"reveal_zh", "secret_zh"}, gap: 21},
	{level: policy.StrengthLow, name: "secret-reveal-zh", parts: []string{"secret_zh", "reveal_zh"}, gap: 27},
	{level: policy.StrengthMedium, name: "secret-ask-zh", parts: []string{"secret_zh", "ask_zh"}, gap: 9},

	// Fake framing.
	{level: policy.StrengthLow, name: "fake-tag-payload", parts: []string{"fake_tag", "payload"}, gap: 60, crossBreaks: true},
	{level: policy.StrengthLow, name: "fake-tag-ignore", parts: []string{"fake_tag", "ignore", "own_rules"}, gap: 60, crossBreaks: true},
	{level: policy.StrengthLow, name: "fake-tag-payload-zh", parts: []string{"fake_tag_zh", "payload_zh"}, gap: 45, crossBreaks: true},
	{level: policy.StrengthMedium, name: "fake-tag", parts: []string{"fake_tag"}, unless: []string{"device", "example", "tech"}, near: 60},
	{level: policy.StrengthMedium, name: "fake-tag-zh", parts: []string{"fake_tag_zh"}, unless: []string{"device", "example", "tech"}, near: 60},

	// Personas.
	{level: policy.StrengthLow, name: "persona-unrestricted", parts: []string{"persona", "unrestricted"}, gap: 64},
	{level: policy.StrengthLow, name: "persona-unrestricted-zh", parts: []string{"persona_zh", "unrestricted_zh"}, gap: 45},
	{level: policy.StrengthLow, name: "grandma", parts: []string{"persona", "grandma", "story_hook", "danger"}, gap: 60, crossBreaks: true},
	{level: policy.StrengthLow, name: "grandma-zh", parts: []string{"persona_zh", "grandma", "story_hook", "danger"}, gap: 45, crossBreaks: true},
	{level: policy.StrengthMedium, name: "unrestricted-ai", parts: []string{"unrestricted", "ai_context"}, gap: 12, unless: []string{"device", "example"}},

	// Developer mode: an attack when aimed at the model, harmless on a
	// phone or in a browser.
	{level: policy.StrengthLow, name: "mode-on", parts: []string{"mode_on", "attack_mode"}, gap: 6, unless: []string{"device"}},
	{level: policy.StrengthLow, name: "mode-enabled", parts: []string{"mode_enabled"}, unless: []string{"device"}},

	// Weak signals: enabled at HIGH only.
	{level: policy.StrengthHigh, name: "system-prompt", parts: []string{"weak"}},
}

// weakSignals are the HIGH-only phrases.
var weakSignals = attackConcept{"weak", []string{
	`system prompt`, `(系统提示|系统提示词)`, `(jailbreak|jailbreaking)`, `越狱`, `stay in character`,
	`from now on(,)? you (are|will|must)`, `(roleplay|role-play|role play) as`, `从现在开始(,)?你(是|将|要|必须)`,
	`角色扮演`, `不要拒绝`, `无论(如何|什么)都(要|必须)回答`, `no restrictions`, `(unfiltered|uncensored)`, `没有任何(限制|约束)`,
	`developer mode`, `开发者模式`, `(ignore|disregard) (the |all )?(above|previous)`, `(忽略|无视)(之前|以上|上面)`,
}}

// maxExpansion bounds the phrases one term may spell, so that a careless
// edit of the table fails a test instead of slowing start-up.
const maxExpansion = 10000

// compiledAttack is the table at one strength: the concepts its rules use,
// expanded, and the rules with concept indexes.
type compiledAttack struct {
	concepts []expandedConcept
	rules    []compiledRule
	maxSpan  int // longest rule match in the phrase view, set by the engine
}

type expandedConcept struct {
	name    string
	phrases []string
}

type compiledRule struct {
	name        string
	parts       []int32
	gap         int
	crossBreaks bool
	unless      []int32
	near        int
}

// promptAttackTable returns the table enabled at strength s. The expansion
// is the same for every engine, so it is done once per strength; callers
// must not modify the result.
func promptAttackTable(s policy.Strength) (*compiledAttack, error) {
	switch s {
	case policy.StrengthLow:
		return lowTable()
	case policy.StrengthMedium:
		return mediumTable()
	case policy.StrengthHigh:
		return highTable()
	default:
		return nil, fmt.Errorf("unknown prompt attack strength %q", s)
	}
}

var (
	lowTable    = sync.OnceValues(func() (*compiledAttack, error) { return compileTable(policy.StrengthLow) })
	mediumTable = sync.OnceValues(func() (*compiledAttack, error) { return compileTable(policy.StrengthMedium) })
	highTable   = sync.OnceValues(func() (*compiledAttack, error) { return compileTable(policy.StrengthHigh) })
)

func compileTable(s policy.Strength) (*compiledAttack, error) {
	byName := map[string]attackConcept{weakSignals.name: weakSignals}
	for _, c := range attackConcepts {
		if _, dup := byName[c.name]; dup {
			return nil, fmt.Errorf("prompt attack concept %q defined twice", c.name)
		}
		byName[c.name] = c
	}
	t := &compiledAttack{}
	index := map[string]int32{}
	use := func(name string) (int32, error) {
		if i, ok := index[name]; ok {
			return i, nil
		}
		c, ok := byName[name]
		if !ok {
			return 0, fmt.Errorf("unknown prompt attack concept %q", name)
		}
		var phrases []string
		for _, term := range c.terms {
			p, err := expandPattern(term)
			if err != nil {
				return 0, fmt.Errorf("prompt attack concept %s term %q: %w", name, term, err)
			}
			phrases = append(phrases, p...)
		}
		i := int32(len(t.concepts))
		index[name] = i
		t.concepts = append(t.concepts, expandedConcept{name: name, phrases: phrases})
		return i, nil
	}
	for _, r := range attackRules {
		if !s.Includes(r.level) {
			continue
		}
		cr := compiledRule{name: r.name, gap: r.gap, crossBreaks: r.crossBreaks, near: r.near}
		if cr.gap == 0 {
			cr.gap = defaultGap
		}
		if cr.near == 0 {
			cr.near = defaultNear
		}
		for _, p := range r.parts {
			i, err := use(p)
			if err != nil {
				return nil, fmt.Errorf("rule %s: %w", r.name, err)
			}
			cr.parts = append(cr.parts, i)
		}
		for _, u := range r.unless {
			i, err := use(u)
			if err != nil {
				return nil, fmt.Errorf("rule %s: %w", r.name, err)
			}
			cr.unless = append(cr.unless, i)
		}
		t.rules = append(t.rules, cr)
	}
	return t, nil
}

// expandPattern spells out every phrase of a table term.
func expandPattern(p string) ([]string, error) {
	e := expander{s: p}
	out, err := e.alt()
	if err != nil {
		return nil, err
	}
	if e.i < len(e.s) {
		return nil, fmt.Errorf("unexpected %q at byte %d", e.s[e.i], e.i)
	}
	return out, nil
}

type expander struct {
	s string
	i int
}

func (e *expander) alt() ([]string, error) {
	var out []string
	for {
		seq, err := e.seq()
		if err != nil {
			return nil, err
		}
		out = append(out, seq...)
		if e.i < len(e.s) && e.s[e.i] == '|' {
			e.i++
			continue
		}
		return out, nil
	}
}

func (e *expander) seq() ([]string, error) {
	cur := []string{""}
	for e.i < len(e.s) {
		var opts []string
		switch c := e.s[e.i]; c {
		case '|', ')':
			return cur, nil
		case '(':
			e.i++
			var err error
			if opts, err = e.alt(); err != nil {
				return nil, err
			}
			if e.i >= len(e.s) || e.s[e.i] != ')' {
				return nil, fmt.Errorf("unclosed ( before byte %d", e.i)
			}
			e.i++
			if e.i < len(e.s) && e.s[e.i] == '?' {
				e.i++
				opts = append(opts, "")
			}
		case '\\':
			e.i++
			if e.i >= len(e.s) {
				return nil, fmt.Errorf("trailing \\")
			}
			fallthrough
		default:
			_, size := utf8.DecodeRuneInString(e.s[e.i:])
			opts = []string{e.s[e.i : e.i+size]}
			e.i += size
		}
		next := make([]string, 0, len(cur)*len(opts))
		for _, a := range cur {
			for _, b := range opts {
				next = append(next, a+b)
			}
		}
		if len(next) > maxExpansion {
			return nil, fmt.Errorf("expands to more than %d phrases", maxExpansion)
		}
		cur = next
	}
	return cur, nil
}
