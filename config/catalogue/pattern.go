package catalogue

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"runtime"
	"sync"
	"weak"
)

// maxPatternRunes bounds the rune tables of a compiled parameter pattern.
// A class of Unicode letters holds about 1 300 runes; a counted repetition
// of it ({0,99}) copies it a hundred times, and Go's one-pass compilation
// then builds megabytes per pattern. Lengths are bounded by max_length
// instead.
const maxPatternRunes = 16 << 10

// patterns shares compiled parameter patterns across routes, catalogues and
// configuration reloads: each distinct pattern is compiled once while some
// catalogue uses it, and freed with the last one (weak pointers).
var patterns = struct {
	sync.Mutex
	byText map[string]weak.Pointer[regexp.Regexp]
}{byText: map[string]weak.Pointer[regexp.Regexp]{}}

// wholeValue returns a pattern that matches what pattern matches only when
// the match is the whole value: from the start of the text (\A) to its end
// (\z), whatever alternation or flags pattern holds (a flag set inside a
// group ends with it).
func wholeValue(pattern string) string { return `\A(?:` + pattern + `)\z` }

// compilePattern returns the shared compiled form of a parameter pattern.
// It refuses a pattern whose program exceeds maxPatternRunes.
func compilePattern(pattern string) (*regexp.Regexp, error) {
	patterns.Lock()
	defer patterns.Unlock()
	if wp, ok := patterns.byText[pattern]; ok {
		if re := wp.Value(); re != nil {
			return re, nil
		}
	}
	if err := checkPatternSize(pattern); err != nil {
		return nil, err
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	patterns.byText[pattern] = weak.Make(re)
	runtime.AddCleanup(re, forgetPattern, pattern)
	return re, nil
}

// forgetPattern drops a pattern's entry once its compiled form is freed,
// unless the entry already points at a newer, live one.
func forgetPattern(pattern string) {
	patterns.Lock()
	defer patterns.Unlock()
	if wp, ok := patterns.byText[pattern]; ok && wp.Value() == nil {
		delete(patterns.byText, pattern)
	}
}

// checkPatternSize refuses a pattern whose compiled program carries more
// than maxPatternRunes runes in its character classes.
func checkPatternSize(pattern string) error {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return err
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return err
	}
	runes := 0
	for i := range prog.Inst {
		runes += len(prog.Inst[i].Rune)
	}
	if runes > maxPatternRunes {
		return fmt.Errorf("pattern too large once compiled (%d runes in classes, at most %d): "+
			"bound the length with max_length rather than a counted repetition such as {0,99}", runes, maxPatternRunes)
	}
	return nil
}
