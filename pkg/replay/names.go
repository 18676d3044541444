package replay

import (
	"errors"
	"fmt"
)

// maxTopicLen is Kafka's limit on a topic name's length.
const maxTopicLen = 249

// ValidTopic reports whether name is a legal Kafka topic name: 1 to 249
// characters of ASCII letters, digits, '.', '_' and '-', and not "." or
// "..". The error says what is wrong and names no flag; the caller does.
func ValidTopic(name string) error {
	switch {
	case name == "":
		return errors.New("empty topic name")
	case name == "." || name == "..":
		return fmt.Errorf("%q is not a legal topic name", name)
	case len(name) > maxTopicLen:
		return fmt.Errorf("topic name is %d characters long, the limit is %d", len(name), maxTopicLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-' {
			continue
		}
		return fmt.Errorf("topic %q has the character %q; legal are ASCII letters, digits, '.', '_' and '-'", name, c)
	}
	return nil
}
