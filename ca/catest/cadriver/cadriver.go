// Package cadriver builds cadriver, the C client of pvhub's interop tests and
// of `pvhub bench`, on the real EPICS client library (libca): see the comment
// at the top of c/cadriver.c for its subcommands and output. It needs gcc and an
// installed libca (Debian libca-dev); the binary is cached.
package cadriver

import (
	"bytes"
	"crypto/sha256"
	_ "embed" // the driver's source
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

//go:embed c/cadriver.c
var source []byte

// CacheDir returns a directory for files derived from the given key parts:
// under the user's cache directory, or under the temporary directory when
// that is unusable.
func CacheDir(kind string, parts ...[]byte) (string, error) {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:", len(p))
		h.Write(p)
	}
	name := filepath.Join("pvhub-catest", kind+"-"+hex.EncodeToString(h.Sum(nil))[:16])
	var bases []string
	if d, err := os.UserCacheDir(); err == nil && d != "" {
		bases = append(bases, d)
	}
	bases = append(bases, os.TempDir())
	var err error
	for _, b := range bases {
		dir := filepath.Join(b, name)
		if err = os.MkdirAll(dir, 0o755); err == nil {
			return dir, nil
		}
	}
	return "", err
}

// libcaLinkArgs returns the linker arguments for libca and a fingerprint of
// the library, or "" when no libca is installed.
func libcaLinkArgs(gcc string) (args []string, fingerprint string) {
	out, err := exec.Command(gcc, "-print-file-name=libca.so").Output()
	if p := strings.TrimSpace(string(out)); err == nil && filepath.IsAbs(p) {
		if fi, err := os.Stat(p); err == nil {
			return []string{"-lca"}, fmt.Sprintf("%s %d %d", p, fi.Size(), fi.ModTime().UnixNano())
		}
	}
	// Only the versioned library (libca4.13.5 without libca-dev).
	for _, pattern := range []string{"/usr/lib/*/libca.so.4*", "/usr/lib/libca.so.4*", "/usr/local/lib/libca.so.4*"} {
		matches, _ := filepath.Glob(pattern)
		for _, p := range matches {
			if fi, err := os.Stat(p); err == nil {
				return []string{"-L" + filepath.Dir(p), "-l:" + filepath.Base(p)},
					fmt.Sprintf("%s %d %d", p, fi.Size(), fi.ModTime().UnixNano())
			}
		}
	}
	return nil, ""
}

// Build compiles the driver (gcc -Wall -Wextra -Werror -O2, linked with libca)
// into a cache directory named after a hash of its source and of the library,
// unless it is there already, and returns its path. missing names what is not
// installed (gcc, libca), with err nil.
func Build() (path, missing string, err error) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		return "", "gcc (C compiler for the libca driver)", nil
	}
	link, fp := libcaLinkArgs(gcc)
	if link == nil {
		return "", "libca (EPICS Channel Access client library, Debian libca-dev)", nil
	}
	dir, err := CacheDir("cadriver", source, []byte(fp), []byte(gcc))
	if err != nil {
		return "", "", err
	}
	bin := filepath.Join(dir, "cadriver")
	if fi, err := os.Stat(bin); err == nil && fi.Mode()&0o100 != 0 {
		return bin, "", nil
	}
	src := filepath.Join(dir, fmt.Sprintf("cadriver-%d.c", os.Getpid()))
	if err := os.WriteFile(src, source, 0o644); err != nil {
		return "", "", err
	}
	defer os.Remove(src)
	tmp := fmt.Sprintf("%s.tmp%d", bin, os.Getpid())
	args := append([]string{"-Wall", "-Wextra", "-Werror", "-O2", "-o", tmp, src}, link...)
	var out bytes.Buffer
	cmd := exec.Command(gcc, args...)
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		os.Remove(tmp)
		return "", "", fmt.Errorf("gcc %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	if err := os.Rename(tmp, bin); err != nil {
		os.Remove(tmp)
		return "", "", err
	}
	return bin, "", nil
}
