# syntax=docker/dockerfile:1

# Build: static binaries (no cgo), so they run on distroless/static.
FROM golang:1.26-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-mod=readonly
# Dependencies first: this layer is reused until go.mod/go.sum change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/billing-adapter ./cmd/billing-adapter && \
    go build -trimpath -ldflags="-s -w" -o /out/stripe-sim ./cmd/stripe-sim && \
    mkdir -p /out/data

# Run: no shell, no package manager, non-root (uid/gid 65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/billing-adapter /billing-adapter
COPY --from=build /out/stripe-sim /stripe-sim
# /data belongs to the non-root user, so a named volume mounted there (stripe-sim -state) is writable.
COPY --from=build --chown=65532:65532 /out/data /data
ENV BILLING_ADDR=0.0.0.0:8080
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/billing-adapter"]
CMD ["serve"]
