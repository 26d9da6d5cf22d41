package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// The doc check: every curl example of the README's payment page flow, API
// and simulator sections runs, in order, against run() with the embedded
// Stripe simulator, as a reader would paste it into a shell: the variables
// the README exports (BA and SIM pointed at this run's free ports), the IDs
// it tells the reader to copy from an answer (`export CUS=cus_...`), the
// values it captures with $(curl ... | sed ...). Each answer must have the
// status the README shows (`# 201 {...}`; 2xx where it shows none) and the
// literal fields it shows ("code":"WELCOME20"; values with ... or <...> are
// placeholders).
func TestReadmeExamples(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeShellBlocks(string(readme), "The payment page flow, end to end", "API", "The Stripe simulator")
	if len(blocks) < 6 {
		t.Fatalf("found %d sh blocks in the README sections", len(blocks))
	}

	// The service as `make run` starts it (scripts/run.sh): the development
	// keys, the embedded simulator, the webhook secret.
	addr, simAddr := freeAddr(t), freeAddr(t)
	opt, err := redis.ParseURL(redisSrv.URL())
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	if err := rdb.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"BILLING_ADDR": addr, "STRIPE_SIM_ADDR": simAddr, "REDIS_URL": redisSrv.URL(),
		"BILLING_API_KEYS":       "admin:admin:dev_admin_secret_change_me,checkout:checkout:dev_checkout_secret_change_me",
		"STRIPE_WEBHOOK_SECRETS": "whsec_dev_local_secret",
	}
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, func(k string) string { return env[k] }, logs, logs) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("service: %v", err)
		}
		if t.Failed() {
			t.Logf("service logs:\n%s", logs.String())
		}
	}()
	waitHealthy(t, "http://"+addr, func() error {
		select {
		case err := <-done:
			done <- err
			return fmt.Errorf("service exited: %v", err)
		default:
			return nil
		}
	})

	sh := &readmeShell{t: t, vars: map[string]string{},
		fixed: map[string]string{"BA": "http://" + addr, "SIM": "http://" + simAddr}}
	ran, written := 0, 0
	for _, b := range blocks {
		if !strings.Contains(b.text, "curl ") {
			continue // e.g. starting bin/stripe-sim: nothing to ask
		}
		written += strings.Count(b.text, "curl ")
		for _, c := range lexShell(t, b) {
			if sh.exec(c) {
				ran++
			}
		}
	}
	if ran != written || ran < 25 {
		t.Fatalf("%d curl examples ran of the %d the README shows", ran, written)
	}
}

// shellBlock is one ```sh block and the README line it starts on.
type shellBlock struct {
	text string
	line int
}

// readmeShellBlocks returns the ```sh blocks under the given level-2
// headings (their subsections included), in document order.
func readmeShellBlocks(readme string, sections ...string) []shellBlock {
	want := map[string]bool{}
	for _, s := range sections {
		want[s] = true
	}
	var out []shellBlock
	in, inBlock := false, false
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(readme, "\n") {
		switch {
		case inBlock && line == "```":
			inBlock = false
			if in {
				out = append(out, shellBlock{cur.String(), start})
			}
		case inBlock:
			cur.WriteString(line + "\n")
		case strings.HasPrefix(line, "```sh"):
			inBlock, start = true, i+2
			cur.Reset()
		case strings.HasPrefix(line, "## "):
			in = want[strings.TrimPrefix(line, "## ")]
		}
	}
	return out
}

// shellWord is one word of a command as written: its parts are literal text
// or expansions ($VAR, $(key), $(...)), each remembering whether it was
// quoted.
type shellWord []wordPart

type wordPart struct {
	text  string
	kind  int // literal, variable, subst
	quote bool
}

const (
	partLiteral = iota
	partVar
	partSubst
)

// shellCmd is one command line: pipeline stages of words, the comment
// after it (trailing, and the comment lines right below it), its line.
type shellCmd struct {
	stages  [][]shellWord
	comment string
	line    int
}

// lexShell splits a block into commands with the shell's quoting rules for
// the forms the README uses: '...', "..." with \" \\ \$ escapes, $VAR,
// ${VAR}, $(...), backslash-newline, |, ; and # comments.
func lexShell(t *testing.T, b shellBlock) []shellCmd {
	t.Helper()
	src, line := b.text, b.line
	var cmds []shellCmd
	var cmd shellCmd
	var words []shellWord
	var word shellWord
	inWord := false
	lastEnd := -10 // line of the last command's end, for comment lines below it
	flushWord := func() {
		if inWord {
			words = append(words, word)
		}
		word, inWord = nil, false
	}
	flushStage := func() {
		flushWord()
		if len(words) > 0 {
			cmd.stages = append(cmd.stages, words)
		}
		words = nil
	}
	flushCmd := func() {
		flushStage()
		if len(cmd.stages) > 0 {
			cmds = append(cmds, cmd)
			lastEnd = line
		}
		cmd = shellCmd{line: line + 1}
	}
	cmd.line = line
	startWord := func() {
		if !inWord && len(words) == 0 && len(cmd.stages) == 0 {
			cmd.line = line
		}
		inWord = true
	}
	lit := func(s string, quoted bool) {
		startWord()
		if n := len(word); n > 0 && word[n-1].kind == partLiteral && word[n-1].quote == quoted {
			word[n-1].text += s
			return
		}
		word = append(word, wordPart{text: s, quote: quoted})
	}
	// dollar reads an expansion at src[i] == '$' and returns the index after it.
	dollar := func(i int, quoted bool) int {
		startWord()
		switch {
		case i+1 < len(src) && src[i+1] == '(':
			depth, j := 1, i+2
			var q byte
			for ; j < len(src) && depth > 0; j++ {
				c := src[j]
				switch {
				case q != 0 && c == q:
					q = 0
				case q != 0:
				case c == '\'' || c == '"':
					q = c
				case c == '(':
					depth++
				case c == ')':
					depth--
				}
			}
			if depth != 0 {
				t.Fatalf("README line %d: unclosed $(", line)
			}
			word = append(word, wordPart{text: src[i+2 : j-1], kind: partSubst, quote: quoted})
			return j
		case i+1 < len(src) && src[i+1] == '{':
			end := strings.IndexByte(src[i:], '}')
			word = append(word, wordPart{text: src[i+2 : i+end], kind: partVar, quote: quoted})
			return i + end + 1
		}
		j := i + 1
		for j < len(src) && (src[j] == '_' || src[j] >= 'A' && src[j] <= 'Z' || src[j] >= 'a' && src[j] <= 'z' || src[j] >= '0' && src[j] <= '9') {
			j++
		}
		if j == i+1 {
			lit("$", quoted)
			return j
		}
		word = append(word, wordPart{text: src[i+1 : j], kind: partVar, quote: quoted})
		return j
	}
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\\' && i+1 < len(src) && src[i+1] == '\n':
			line++
			i += 2
		case c == '\\' && i+1 < len(src):
			lit(string(src[i+1]), false)
			i += 2
		case c == '\n':
			flushCmd()
			line++
			i++
		case c == ' ' || c == '\t':
			flushWord()
			i++
		case c == ';':
			flushCmd()
			i++
		case c == '|':
			flushStage()
			i++
		case c == '#' && !inWord:
			end := strings.IndexByte(src[i:], '\n')
			if end < 0 {
				end = len(src) - i
			}
			raw := src[i+1 : i+end]
			text := strings.TrimSpace(raw)
			switch {
			case len(words) > 0 || len(cmd.stages) > 0: // trailing comment
				cmd.comment = text
			case len(cmds) > 0 && lastEnd == line-1 && (statusComment.MatchString(text) ||
				strings.HasPrefix(text, "{") || strings.HasPrefix(raw, "  ")):
				// The answer shown right below a command, and its
				// indented continuation lines.
				prev := &cmds[len(cmds)-1]
				prev.comment = strings.TrimSpace(prev.comment + " " + text)
				lastEnd = line
			}
			i += end
		case c == '\'':
			end := strings.IndexByte(src[i+1:], '\'')
			if end < 0 {
				t.Fatalf("README line %d: unclosed '", line)
			}
			s := src[i+1 : i+1+end]
			line += strings.Count(s, "\n")
			lit(s, true)
			i += end + 2
		case c == '"':
			startWord()
			j := i + 1
			for ; j < len(src) && src[j] != '"'; j++ {
				switch {
				case src[j] == '\\' && j+1 < len(src) && strings.IndexByte(`"\$`, src[j+1]) >= 0:
					lit(string(src[j+1]), true)
					j++
				case src[j] == '$':
					j = dollar(j, true) - 1
				default:
					if src[j] == '\n' {
						line++
					}
					lit(string(src[j]), true)
				}
			}
			if j >= len(src) {
				t.Fatalf("README line %d: unclosed \"", line)
			}
			i = j + 1
		case c == '$':
			i = dollar(i, false)
		default:
			lit(string(c), false)
			i++
		}
	}
	flushCmd()
	return cmds
}

// readmeShell runs the README's commands.
type readmeShell struct {
	t       *testing.T
	vars    map[string]string
	fixed   map[string]string // variables whose README value is replaced (this run's addresses)
	answers [][]byte          // the bodies answered so far, newest last
}

// expand turns words into argv.
func (sh *readmeShell) expand(c shellCmd, words []shellWord) []string {
	var argv []string
	for _, w := range words {
		var b strings.Builder
		for _, p := range w {
			switch p.kind {
			case partLiteral:
				b.WriteString(p.text)
			case partVar:
				v, ok := sh.vars[p.text]
				if !ok {
					sh.t.Fatalf("README line %d: $%s is not set by any earlier step", c.line, p.text)
				}
				b.WriteString(v)
			case partSubst:
				if strings.TrimSpace(p.text) != "key" {
					sh.t.Fatalf("README line %d: cannot expand $(%s) here", c.line, p.text)
				}
				b.WriteString(newUUID())
			}
		}
		argv = append(argv, b.String())
	}
	return argv
}

var placeholder = regexp.MustCompile(`^([a-z]+_)[A-Za-z0-9]*\.\.\.$`)

// exec runs one command and reports whether it was a request.
func (sh *readmeShell) exec(c shellCmd) bool {
	t := sh.t
	first := c.stages[0]
	name := ""
	if len(first[0]) > 0 && first[0][0].kind == partLiteral {
		name = first[0][0].text
	}
	switch {
	case name == "key()" || name == "}":
		return false // the README's key generator: $(key) is a fresh UUID here
	case name == "export":
		for _, kv := range sh.expand(c, first[1:]) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				t.Fatalf("README line %d: export %q", c.line, kv)
			}
			if f, ok := sh.fixed[k]; ok {
				v = f
			} else if m := placeholder.FindStringSubmatch(v); m != nil {
				v = sh.lastID(c, m[1])
			}
			sh.vars[k] = v
		}
		return false
	case name == "curl":
		if len(c.stages) != 1 {
			t.Fatalf("README line %d: a piped curl outside $(...)", c.line)
		}
		status, body := sh.curl(c, sh.expand(c, first))
		sh.check(c, status, body)
		return true
	case len(first) == 1 && len(first[0]) == 2 && first[0][1].kind == partSubst && strings.HasSuffix(name, "="):
		// NAME=$(curl ... | sed 's/.*"id":"\(cus_[^"]*\)".*/\1/')
		inner := lexShell(t, shellBlock{first[0][1].text, c.line})
		if len(inner) != 1 || len(inner[0].stages) != 2 {
			t.Fatalf("README line %d: capture must be $(curl ... | sed ...)", c.line)
		}
		inner[0].line = c.line
		status, body := sh.curl(inner[0], sh.expand(inner[0], inner[0].stages[0]))
		sh.check(c, status, body)
		sed := sh.expand(inner[0], inner[0].stages[1])
		v := sedSubstitute(t, c.line, sed, string(body))
		if !regexp.MustCompile(`^[a-z]+_[A-Za-z0-9]+$`).MatchString(v) {
			t.Fatalf("README line %d: the capture gave %q, not an ID", c.line, v)
		}
		sh.vars[strings.TrimSuffix(name, "=")] = v
		return true
	}
	t.Fatalf("README line %d: the doc check does not know how to run %q", c.line, name)
	return false
}

// lastID finds, newest answer first, the first string value (not a key)
// starting with prefix.
func (sh *readmeShell) lastID(c shellCmd, prefix string) string {
	re := regexp.MustCompile(`"(` + regexp.QuoteMeta(prefix) + `[A-Za-z0-9]+)"\s*[,}\]]`)
	for i := len(sh.answers) - 1; i >= 0; i-- {
		if m := re.FindSubmatch(sh.answers[i]); m != nil {
			return string(m[1])
		}
	}
	sh.t.Fatalf("README line %d: no answer so far has a %s... ID to copy", c.line, prefix)
	return ""
}

// curl performs the request the argv describes (-s -X -H -d -u URL).
func (sh *readmeShell) curl(c shellCmd, argv []string) (int, []byte) {
	t := sh.t
	method, url, user := "", "", ""
	var data []string
	header := http.Header{}
	for i := 1; i < len(argv); i++ {
		a := argv[i]
		arg := func() string {
			if i+1 >= len(argv) {
				t.Fatalf("README line %d: %s needs a value", c.line, a)
			}
			i++
			return argv[i]
		}
		switch a {
		case "-s":
		case "-X":
			method = arg()
		case "-H":
			k, v, ok := strings.Cut(arg(), ":")
			if !ok {
				t.Fatalf("README line %d: header %q", c.line, argv[i])
			}
			header.Add(k, strings.TrimSpace(v))
		case "-d":
			data = append(data, arg())
		case "-u":
			user = arg()
		default:
			if strings.HasPrefix(a, "-") || url != "" {
				t.Fatalf("README line %d: curl argument %q is not one the doc check knows", c.line, a)
			}
			url = a
		}
	}
	if method == "" {
		method = "GET"
		if len(data) > 0 {
			method = "POST"
		}
	}
	var body io.Reader
	if len(data) > 0 {
		body = strings.NewReader(strings.Join(data, "&"))
		if header.Get("Content-Type") == "" {
			header.Set("Content-Type", "application/x-www-form-urlencoded") // what curl -d sends
		}
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatalf("README line %d: %v", c.line, err)
	}
	req.Header = header
	if user != "" {
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user)))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("README line %d: %s %s: %v", c.line, method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	sh.answers = append(sh.answers, raw)
	return resp.StatusCode, raw
}

var (
	statusComment = regexp.MustCompile(`^(\d{3})\b`)
	shownField    = regexp.MustCompile(`"([^"]+)":("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|true|false|null)`)
)

// check compares an answer with what the README shows after the command.
func (sh *readmeShell) check(c shellCmd, status int, body []byte) {
	t := sh.t
	if m := statusComment.FindStringSubmatch(c.comment); m != nil {
		if want, _ := strconv.Atoi(m[1]); status != want {
			t.Fatalf("README line %d: status %d, the README shows %d: %s", c.line, status, want, body)
		}
	} else if status < 200 || status > 299 {
		t.Fatalf("README line %d: status %d, the README shows a success: %s", c.line, status, body)
	}
	var answer any
	if json.Unmarshal(body, &answer) != nil {
		t.Fatalf("README line %d: the answer is not JSON: %s", c.line, body)
	}
	for _, m := range shownField.FindAllStringSubmatch(c.comment, -1) {
		if strings.Contains(m[2], "...") || strings.Contains(m[2], "<") {
			continue
		}
		var want any
		if err := json.Unmarshal([]byte(m[2]), &want); err != nil {
			t.Fatalf("README line %d: shown value %s: %v", c.line, m[2], err)
		}
		if !hasField(answer, m[1], want) {
			t.Errorf("README line %d: the README shows \"%s\":%s, the answer has no such field: %s", c.line, m[1], m[2], body)
		}
	}
}

// hasField reports whether v holds key with value want at any depth.
func hasField(v any, key string, want any) bool {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if k == key && sameJSON(val, want) {
				return true
			}
			if hasField(val, key, want) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if hasField(e, key, want) {
				return true
			}
		}
	}
	return false
}

func sameJSON(a, b any) bool {
	if fa, ok := a.(float64); ok {
		fb, ok := b.(float64)
		return ok && math.Abs(fa-fb) < 1e-9
	}
	return a == b
}

// sedSubstitute applies the README's `sed 's/RE/\1/'` (a basic regular
// expression) to one line of text, as sed does.
func sedSubstitute(t *testing.T, line int, argv []string, text string) string {
	t.Helper()
	if len(argv) != 2 || argv[0] != "sed" || !strings.HasPrefix(argv[1], "s/") {
		t.Fatalf("README line %d: the doc check runs only sed 's/RE/\\1/', not %q", line, argv)
	}
	parts := strings.Split(argv[1], "/")
	if len(parts) != 4 || parts[2] != `\1` {
		t.Fatalf("README line %d: sed expression %q", line, argv[1])
	}
	re := strings.NewReplacer(`\(`, "(", `\)`, ")").Replace(parts[1])
	m := regexp.MustCompile(re).FindStringSubmatch(strings.TrimRight(text, "\n"))
	if m == nil {
		return text // sed prints a line it did not change
	}
	return m[1]
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
