# syntax=docker/dockerfile:1
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/lessee ./cmd/lessee

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/lessee /usr/local/bin/lessee
USER nonroot
ENTRYPOINT ["/usr/local/bin/lessee"]
CMD ["serve"]
