// Package source gets a component's code into a directory: a git clone, an
// uploaded package received in resumable chunks, or an archive extracted
// safely. Everything it is given is attacker-controlled (URLs, archives,
// repository contents), so each entry point validates before it acts and
// fails with a typed error that tells the user what to fix.
package source
