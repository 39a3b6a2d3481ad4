# syntax=docker/dockerfile:1
# podguard's image: a static binary on scratch, running as 1000:1000 (the
# hardened setup's appuser), no shell, no package manager.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=v0.0.0-dev
ARG COMMIT=unknown
# Reproducible: no cgo, no paths, no VCS stamping beyond the ldflags.
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -buildid= -X podguard.dev/podguard/cmd/podguard/internal/versioncmd.version=${VERSION} -X podguard.dev/podguard/cmd/podguard/internal/versioncmd.commit=${COMMIT}" \
      -o /out/podguard ./cmd/podguard \
 && mkdir -p /out/etc/ssl/certs \
 && cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/ \
 && echo 'appuser:x:1000:1000:appuser:/:/sbin/nologin' > /out/etc/passwd \
 && echo 'appuser:x:1000:' > /out/etc/group

FROM scratch
COPY --from=build /out/etc/ /etc/
COPY --from=build /out/podguard /podguard
USER 1000:1000
EXPOSE 9443 8443 8081
ENTRYPOINT ["/podguard"]
CMD ["serve"]
