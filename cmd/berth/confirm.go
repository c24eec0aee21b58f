package main

import (
	"bufio"
	"fmt"
	"strings"
)

// confirmDestruction asks, on a terminal, for the name of what is about to
// be destroyed, as GitHub does for a repository: a "y" typed by habit must
// not delete a team. Without a terminal there is nobody to ask, so a script
// has to say --yes.
func (c *cli) confirmDestruction(what, name string, yes bool) error {
	if yes {
		return nil
	}
	if c.term == nil {
		return fmt.Errorf("refusing to delete %s %s without confirmation: there is no terminal to ask on; pass --yes to delete it", what, name)
	}
	fmt.Fprintf(c.err(), "This deletes %s %s and everything it owns. Type its name to confirm: ", what, name)
	line, err := bufio.NewReader(c.stdin).ReadString('\n')
	if err != nil && line == "" {
		return fmt.Errorf("%s %s not deleted: no confirmation was read (%w)", what, name, err)
	}
	if strings.TrimSpace(line) != name {
		return fmt.Errorf("%s %s not deleted: the name typed was %q", what, name, strings.TrimSpace(line))
	}
	return nil
}
