package rendezvous

import (
	"context"
	"errors"
	"fmt"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// Two jobs share one standalone nats-server, each with its own NATS user
// confined by the authorization block AuthorizationConfig prints. Job A
// runs as its first restart, so the restart's ID must be covered too.
var (
	jobA = JobUser{User: "alice", Password: `a1ice "pw" \ $HOME`, RunID: "jobA", Restarts: 1}
	jobB = JobUser{User: "bob", Password: "b0b-pw", RunID: "jobB"}
)

// startShared runs nats-server with users for jobA and jobB and returns its
// URL, process and configuration file.
func startShared(t *testing.T) (string, *os.Process, string) {
	t.Helper()
	conf, err := AuthorizationConfig(jobA, jobB)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	url, cmd := startExternal(t, "-c", path)
	return url, cmd.Process, path
}

// jobWorker is worker i of a run, presenting user u; it also holds the
// token, as launched workers do, which must not reach NATS.
func jobWorker(url string, u JobUser, run string, world, rank, i int) Options {
	o := worker(url, run, world, rank, i)
	o.User, o.Password = u.User, u.Password
	return o
}

// withUserInfo is url with user and password in it.
func withUserInfo(t *testing.T, url, user, password string) string {
	t.Helper()
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	u.User = neturl.UserPassword(user, password)
	return u.String()
}

// (a) Both jobs form their groups at once; job B's workers use an exchange,
// job A's a request whose reply inbox is under the run's prefix.
func TestSharedServerRunsTwoJobs(t *testing.T) {
	url, _, _ := startShared(t)
	runA := AttemptID(jobA.RunID, 1)
	optsA := []Options{jobWorker(url, jobA, runA, 2, 0, 0), jobWorker(url, jobA, runA, 2, 1, 1)}
	optsB := []Options{jobWorker(url, jobB, "jobB", 3, -1, 2), jobWorker(url, jobB, "jobB", 3, -1, 3), worker(url, "jobB", 3, -1, 4)}
	// The third worker of B names its user in the URL instead.
	optsB[2].URL = withUserInfo(t, url, jobB.User, jobB.Password)
	ms := mustJoinAll(t, append(append([]Options(nil), optsA...), optsB...))
	msA, msB := ms[:2], ms[2:]
	checkAgreement(t, msA, optsA)
	checkAgreement(t, msB, optsB)

	vals := make([][][]byte, len(msB))
	errs := make([]error, len(msB))
	var wg sync.WaitGroup
	for i, m := range msB {
		wg.Go(func() { vals[i], errs[i] = m.Exchange(context.Background(), "nccl", []byte{byte(m.Rank())}) })
	}
	wg.Wait()
	for i := range msB {
		if errs[i] != nil {
			t.Fatalf("job B member %d: exchange: %v", i, errs[i])
		}
		for r, v := range vals[i] {
			if len(v) != 1 || int(v[0]) != r {
				t.Fatalf("job B member %d: exchange value of rank %d = %v", i, r, v)
			}
		}
	}

	if inbox := msA[1].Conn().NewInbox(); !strings.HasPrefix(inbox, prefix(runA)+"._INBOX.") {
		t.Fatalf("inbox %s is outside the run's prefix", inbox)
	}
	svc := subject(runA, "svc")
	if _, err := msA[0].Conn().Subscribe(svc, func(m *nats.Msg) { m.Respond([]byte("pong")) }); err != nil {
		t.Fatal(err)
	}
	if err := msA[0].Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	reply, err := msA[1].Conn().Request(svc, []byte("ping"), 10*time.Second)
	if err != nil || string(reply.Data) != "pong" {
		t.Fatalf("request within job A: %v, %v", reply, err)
	}
}

// (b) Job B's user cannot listen to job A, nor to anybody's inboxes, nor
// publish into job A: the server refuses each.
func TestSharedServerDeniesOtherJobsSubjects(t *testing.T) {
	url, _, _ := startShared(t)
	errs := make(chan error, 16)
	nc, err := nats.Connect(url, nats.UserInfo(jobB.User, jobB.Password), nats.PermissionErrOnSubscribe(true),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for _, subj := range []string{"cohort.jobA.>", "cohort.jobA.hb", "cohort.jobA-r1.join", "cohort.*.abort", "cohort.>", ">", "_INBOX.>"} {
		t.Run("subscribe "+subj, func(t *testing.T) {
			sub, err := nc.SubscribeSync(subj)
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Unsubscribe()
			// Returns at the server's denial; a timeout means it was allowed.
			if _, err := sub.NextMsg(10 * time.Second); !errors.Is(err, nats.ErrPermissionViolation) {
				t.Fatalf("job B's user subscribed to %s: %v, want a permission violation", subj, err)
			}
		})
	}
	for _, subj := range []string{"cohort.jobA.abort", "cohort.jobA-r1.join"} {
		t.Run("publish "+subj, func(t *testing.T) {
			if err := nc.Publish(subj, []byte(`{"run":"jobA","reason":"intruder"}`)); err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("Publish to %q", subj)
			for {
				select {
				case err := <-errs:
					if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), want) {
						return
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("no permission violation for job B's user publishing to %s", subj)
				}
			}
		})
	}
}

// (c) A worker whose user may not use its run's subjects fails at once with
// ErrPermission, naming the subject and the pattern to allow, instead of
// waiting out the rendezvous timeout.
func TestPermissionDeniedFailsFast(t *testing.T) {
	url, _, _ := startShared(t)
	tests := []struct {
		name string
		user JobUser
		run  string
	}{
		{"another job's run", jobB, "jobA"},
		{"nobody's run", jobB, "jobC"},
		{"a restart beyond the allowed ones", jobA, AttemptID(jobA.RunID, 2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := Join(context.Background(), jobWorker(url, tt.user, tt.run, 2, 0, 0))
			t.Logf("denied after %v: %v", time.Since(start), err)
			if !errors.Is(err, ErrPermission) || !errors.Is(err, nats.ErrPermissionViolation) || errors.Is(err, ErrTimeout) {
				t.Fatalf("Join as %s in run %s: %v, want ErrPermission", tt.user.User, tt.run, err)
			}
			for _, want := range []string{
				fmt.Sprintf(`denied subscribe to "cohort.%s.`, tt.run),
				fmt.Sprintf(`user %q lacks permission on cohort.%s.>`, tt.user.User, tt.run),
				fmt.Sprintf("inbox prefix cohort.%s._INBOX", tt.run),
			} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q: %v", want, err)
				}
			}
		})
	}
}

// Permissions withdrawn from a joined job (a server reload) reach the
// liveness callback as ErrPermission.
func TestPermissionRevokedAfterJoin(t *testing.T) {
	url, server, conf := startShared(t)
	ms := mustJoinAll(t, []Options{jobWorker(url, jobB, "jobB", 2, 0, 0), jobWorker(url, jobB, "jobB", 2, 1, 1)})
	logs := watchAll(ms)
	moved := jobB
	moved.RunID = "elsewhere"
	revoked, err := AuthorizationConfig(jobA, moved)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte(revoked), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := server.Signal(syscall.SIGHUP); err != nil { // nats-server reloads its configuration
		t.Fatal(err)
	}
	for i, l := range logs {
		if err := l.wait(t, fmt.Sprint("member ", i), 10*time.Second); !errors.Is(err, ErrPermission) {
			t.Fatalf("member %d: %v, want ErrPermission", i, err)
		}
	}
}

// (d) A wrong password is the rejected-credentials error (exit code 3),
// which never shows the password.
func TestSharedServerWrongPassword(t *testing.T) {
	url, _, _ := startShared(t)
	const wrong = "not-alices-pw"
	inURL := worker(withUserInfo(t, url, jobA.User, wrong), "jobA", 1, 0, 0)
	inURL.Token = ""
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"user and password", jobWorker(url, JobUser{User: jobA.User, Password: wrong}, "jobA", 1, 0, 0),
			`rejected user "alice": check COHORT_RDZV_USER (--rdzv-user) and COHORT_RDZV_PASSWORD`},
		{"in the URL", inURL, `NATS at nats://alice:xxxxx@127.0.0.1:`},
		{"token instead of a user", worker(url, "jobA", 1, 0, 0), "rejected the token: check COHORT_JOB_TOKEN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Join(context.Background(), tt.o)
			if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), wrong) {
				t.Fatalf("Join: %v, want ErrAuth with %q and without the password", err, tt.want)
			}
		})
	}
}
