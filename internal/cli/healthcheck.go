package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// HealthcheckCmd is `ordo healthcheck`: one GET of a health endpoint of an
// ordo process (/readyz or /healthz, served on the metrics address of ordo
// run, ordo dev and ordo lag serve), exit 0 on a 2xx answer and 1 on any
// other answer or none. It is the container healthcheck of the image the
// Dockerfile builds, which has no shell and no HTTP client: the binary
// checks itself.
type HealthcheckCmd struct {
	URL     string
	Timeout time.Duration
	Out     io.Writer
}

// defaultHealthURL is ordo run's /readyz on its default metrics address.
const defaultHealthURL = "http://" + defaultMetricsAddr + "/readyz"

func newHealthcheckCmd(out io.Writer) *cobra.Command {
	return newHealthcheckCommand(&HealthcheckCmd{Out: out})
}

// newHealthcheckCommand binds h to a new `ordo healthcheck` command and its
// flags.
func newHealthcheckCommand(h *HealthcheckCmd) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "healthcheck [--url URL] [--timeout D]",
		Short: "GET an ordo process's /readyz or /healthz: exit 0 on 2xx, 1 otherwise (a container healthcheck)",
		Long: `Send one GET to --url, a health endpoint of an ordo process, and exit 0 if it
answers 2xx within --timeout, 1 otherwise, printing the status and the body (the
reason /readyz gives). ordo run, ordo dev and ordo lag serve serve /healthz (the
process lives) and /readyz (ordo run and dev: the member is in its group and no
partition is stalled; lag serve: a broker answers) on their metrics address.

It exists for images with no shell and no curl, such as the distroless image of
the Dockerfile: docker-compose.yml's healthchecks run it inside the container.
No proxy is used.`,
		Example: `  ordo healthcheck                                           # ordo run's /readyz on 127.0.0.1:9100
  ordo healthcheck --url http://127.0.0.1:9308/readyz       # ordo lag serve
  ordo healthcheck --url http://127.0.0.1:9100/healthz --timeout 1s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validated(h.Validate()); err != nil {
				return err
			}
			return h.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&h.URL, "url", defaultHealthURL, "health endpoint to GET (http or https)")
	f.DurationVar(&h.Timeout, "timeout", 2*time.Second, "time allowed for the answer")
	return cmd
}

// Validate checks the flags, connecting to nothing.
func (h *HealthcheckCmd) Validate() error {
	var errs []error
	if u, err := url.Parse(h.URL); err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		errs = append(errs, fmt.Errorf("--url %q: want http://host:port/path (such as %s)", h.URL, defaultHealthURL))
	}
	if h.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("--timeout must be > 0, got %s", h.Timeout))
	}
	return errors.Join(errs...)
}

// Run sends the GET. An answer other than 2xx, or none, is an error naming
// the URL, with the status and the start of the body.
func (h *HealthcheckCmd) Run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL, nil)
	if err != nil {
		return err
	}
	// Straight to the process: no proxy from the environment, no
	// connection kept after the answer.
	cl := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := cl.Do(req)
	if err != nil {
		return fmt.Errorf("%s: no answer: %w", h.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	reason := strings.TrimSpace(string(body))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		if reason == "" {
			return fmt.Errorf("%s: %s", h.URL, resp.Status)
		}
		return fmt.Errorf("%s: %s: %s", h.URL, resp.Status, reason)
	}
	fmt.Fprintf(h.Out, "%s: %s\n", h.URL, resp.Status)
	return nil
}
