# movierec: one binary serving the JSON API and web page on port 7860.
# Build: docker build -t movierec .   Run: docker run -p 7860:7860 movierec
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src src
COPY web web
COPY benches benches
RUN cargo build --release --locked --bin movierec

FROM debian:bookworm-slim
RUN useradd --create-home --uid 1000 movierec
WORKDIR /home/movierec/app
COPY --from=build /src/target/release/movierec /usr/local/bin/movierec
COPY data data
# Train at build time so the container serves at once (and the model matches the image).
RUN movierec train --data data/ml-latest-small --out models/default \
    && chown -R movierec:movierec /home/movierec/app
USER movierec
EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
    CMD ["movierec", "health", "--url", "http://127.0.0.1:7860/api/health"]
CMD ["movierec", "serve", "--host", "0.0.0.0", "--port", "7860"]
