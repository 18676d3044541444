# syntax=docker/dockerfile:1
#
# The ordo binary in a small image: built static (CGO_ENABLED=0), with
# -trimpath and stripped (-ldflags "-s -w"), on distroless/static: CA
# certificates and tzdata, no shell, no package manager, user 65532
# (nonroot). `make build-static`, which CI runs, builds the same binary with
# the same flags on the host and checks that it is statically linked.
#
#   docker build -t ordo:dev .
#   docker run --rm ordo:dev --help
#
# docker-compose.yml builds it for its topics, worker and lag services; their
# healthchecks run `ordo healthcheck`, since the image has no curl.

# The build runs on the builder's platform and cross-compiles to the
# target's (docker buildx build --platform linux/arm64 ...).
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
# The modules first, so that they are downloaded again only when go.mod or
# go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w" -o /out/ordo ./cmd/ordo

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ordo /usr/local/bin/ordo
# nonroot (the image's /etc/passwd names it), numeric so that Kubernetes'
# runAsNonRoot can check it.
USER 65532:65532
# ordo run's metrics and health endpoints (metrics_addr), ordo lag serve's
# (--addr): both listen on loopback unless told 0.0.0.0.
EXPOSE 9100 9308
ENTRYPOINT ["/usr/local/bin/ordo"]
CMD ["--help"]
