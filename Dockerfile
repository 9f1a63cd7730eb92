# syntax=docker/dockerfile:1
# The shadowgate image: one static binary on distroless/static, running as nonroot. Build
# it with `make image` (VERSION and IMAGE set the version stamp and the tag).

# GO_VERSION follows go.mod's go directive (deploy's tests check).
ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG VERSION=dev
# CGO_ENABLED=0: distroless/static has no libc; the binary must need none.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath \
      -ldflags "-s -w -X github.com/shadowgate/shadowgate/cmd/shadowgate/cli.Version=${VERSION}" \
      -o /out/shadowgate ./cmd/shadowgate

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/shadowgate /shadowgate
# 65532 is distroless' nonroot; the chart's runAsUser is the same.
USER 65532:65532
ENTRYPOINT ["/shadowgate"]
