package decide

import (
	"fmt"
	"strings"
)

// Numbers, p-values and dates are readout's (readout.Number, PValue,
// Date): one rule for the reasons, the email and the page.

// join lists words: "a", "a and b", "a, b and c".
func join(words []string) string {
	switch len(words) {
	case 0:
		return ""
	case 1:
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}

// plural returns "1 thing" or "2 things".
func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
