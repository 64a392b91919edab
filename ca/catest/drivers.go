package catest

import (
	"context"
	"testing"
)

// Start runs the C driver with args (a subcommand and its arguments) in the
// client environment env and returns at once; the output lines stream from
// the returned [Proc], which is stopped at the cleanup of the test. Use it for
// monitors.
func (d *CDriver) Start(ctx context.Context, env *Env, args ...string) (*Proc, error) {
	d.t.Helper()
	return StartProcess(d.t, ctx, clientEnviron(d.t, env), d.Path, args...)
}

// Run runs the C driver to completion and returns all its output lines. The
// error is nil for exit status 0 and an [*ExitError] otherwise (1 CA error,
// 2 usage, 3 timeout or not found; see [ExitCode]); the lines are returned
// in either case. Without a deadline in ctx, Run gives up after two minutes.
func (d *CDriver) Run(ctx context.Context, env *Env, args ...string) ([]Line, error) {
	d.t.Helper()
	return run(d.t, ctx, clientEnviron(d.t, env), d.Path, args...)
}

// Start runs the pyepics driver like [CDriver.Start].
func (d *PyDriver) Start(ctx context.Context, env *Env, args ...string) (*Proc, error) {
	d.t.Helper()
	return StartProcess(d.t, ctx, pyEnviron(d.t, env), d.Python, append([]string{"-u", d.Script}, args...)...)
}

// Run runs the pyepics driver like [CDriver.Run].
func (d *PyDriver) Run(ctx context.Context, env *Env, args ...string) ([]Line, error) {
	d.t.Helper()
	return run(d.t, ctx, pyEnviron(d.t, env), d.Python, append([]string{"-u", d.Script}, args...)...)
}

func clientEnviron(t testing.TB, env *Env) []string {
	t.Helper()
	if env == nil {
		t.Fatalf("catest: a driver needs an Env (see NewEnv); without one libca would use port 5065")
	}
	return env.Environ()
}

func pyEnviron(t testing.TB, env *Env) []string {
	t.Helper()
	// Python must not pick up packages or settings from elsewhere.
	return append(clientEnviron(t, env), "PYTHONNOUSERSITE=1", "PYTHONDONTWRITEBYTECODE=1")
}
