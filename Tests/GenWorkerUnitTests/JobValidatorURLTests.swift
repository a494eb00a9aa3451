import Foundation
import GenWorkerCore
import XCTest

/// Protocol 1.1's fields as the validator reads them: inputs by URL and `s3://` only when the
/// worker allows them, a job's own output URL, a webhook only with a signing secret. Where a
/// URL leads is judged later, on the resolved address (`EgressGuard`); here, its text.
final class JobValidatorURLTests: XCTestCase {
    func validator(_ configure: (inout WorkerConfiguration) -> Void = { _ in }, webhooks: Bool = false) -> JobValidator {
        var c = WorkerConfiguration()
        configure(&c)
        return JobValidator(configuration: c, acceptsWebhooks: webhooks)
    }

    func message(_ validator: JobValidator, _ json: String) -> String {
        do {
            _ = try validator.validate(body: Array(json.utf8))
            return "accepted"
        } catch { return error.message }
    }

    func i2v(image: String, extra: String = "") -> String {
        #"{"id":"a","task":"i2v-A14B","params":{"prompt":"p","image":"\#(image)"}\#(extra)}"#
    }

    func testInputURLsOnlyWhereTheWorkerTakesThem() throws {
        let closed = validator()
        XCTAssertEqual(message(closed, i2v(image: "https://x.example/a.png")), "params.image: this worker accepts no input URLs (inputs.urls is off)")
        XCTAssertEqual(message(closed, i2v(image: "s3://b/a.png")), "params.image: this worker reads no s3:// inputs (inputs.s3_buckets is empty)")
        let open = validator {
            $0.inputs.urls = true
            $0.inputs.s3Buckets = ["b"]
            $0.storage.endpoint = "http://s3.internal"
        }
        let job = try open.validate(body: Array(i2v(image: "https://x.example/a.png?X-Amz-Signature=abc").utf8))
        XCTAssertEqual(job.remoteInputs.map(\.name), ["image"])
        XCTAssertEqual(job.remoteInputs.first?.input.redacted, "https://x.example/a.png", "the signature is not shown")
        XCTAssertEqual(job.remoteInputs.first?.media, .image)
        XCTAssertEqual(message(open, i2v(image: "s3://b/in/a.png")), "accepted")
        XCTAssertEqual(message(open, i2v(image: "s3://other/a.png")), "params.image: bucket other is not one this worker reads (inputs.s3_buckets)")
        XCTAssertEqual(message(open, i2v(image: "s3://b/")), "params.image: must be s3://BUCKET/KEY")
        XCTAssertEqual(message(open, i2v(image: "http://x.example/a.png")), "params.image: the URL must be an https:// URL")
        XCTAssertEqual(message(open, i2v(image: "https://u:p@x.example/a.png")), "params.image: the URL must not carry a user or password")
        XCTAssertEqual(message(open, i2v(image: "https://x.example/a b.png")), "params.image: the URL is not a valid URL")
        XCTAssertEqual(message(open, i2v(image: "s3://b/../other/a.png")), "params.image: the key must not start with / nor hold . or .. segments")
        XCTAssertTrue(message(open, i2v(image: "https://169.254.169.254/latest/a.png")).contains("cloud metadata"))
        XCTAssertTrue(message(open, i2v(image: "https://10.1.2.3/a.png")).contains("egress rules"))
        let animate = #"{"id":"a","task":"animate-14B","params":{"src_root_path":"https://x.example/dir"}}"#
        XCTAssertEqual(message(open, animate), "params.src_root_path: must be a directory path (a folder cannot be given by URL)")
    }

    func testALocalizedJobGivesTheGeneratorTheFetchedCopy() throws {
        let open = validator { $0.inputs.urls = true }
        let job = try open.validate(body: Array(i2v(image: "https://x.example/a.png").utf8))
        let local = job.localized(["image": "/run/inputs/image.png"])
        XCTAssertEqual(local.parameter("image"), .path("/run/inputs/image.png"))
        XCTAssertTrue(local.remoteInputs.isEmpty)
        XCTAssertEqual(TransferStep.inputFileName(param: "image", source: .url("https://x/a.JPG?sig=1"), media: .image), "image.jpg")
        XCTAssertEqual(TransferStep.inputFileName(param: "audio", source: .s3(bucket: "b", key: "k/voice"), media: .audio), "audio.wav")
    }

    func testAJobsOwnOutputURL() throws {
        let v = validator()
        let put = #", "output": {"put_url": "https://s3.example/b/k.mp4?X-Amz-Signature=s", "headers": {"Content-Type": "video/mp4"}}"#
        let job = try v.validate(body: Array(#"{"id":"a","task":"t2v-A14B","params":{"prompt":"p"}\#(put)}"#.utf8))
        XCTAssertEqual(job.output, OutputDestination(putURL: "https://s3.example/b/k.mp4?X-Amz-Signature=s", headers: ["Content-Type": "video/mp4"]))
        func t2v(_ output: String) -> String { #"{"id":"a","task":"t2v-A14B","params":{"prompt":"p"}, "output": \#(output)}"# }
        XCTAssertEqual(message(v, t2v(#"{"put_url": "ftp://x/k"}"#)), "output: put_url must be an https:// URL")
        XCTAssertEqual(message(v, t2v(#"{"url": "https://x/k"}"#)), "output: unknown field 'url' (known: put_url, headers)")
        XCTAssertEqual(message(v, t2v(#"{"put_url": "https://x/k", "headers": {"Host": "evil"}}"#)), "output: headers: Host is set by the worker")
        XCTAssertEqual(
            message(v, t2v(#"{"put_url": "https://x/k", "headers": {"X-A": "a\nb"}}"#)),
            "output: headers: 'X-A' must be a header name with a string value on one line")
    }

    func testAWebhookOnlyWithASigningSecret() throws {
        func t2v(_ hook: String) -> String { #"{"id":"a","task":"t2v-A14B","params":{"prompt":"p"}, "webhook": \#(hook)}"# }
        XCTAssertEqual(
            message(validator(), t2v(#"{"url": "https://h.example/in"}"#)), "webhook: this worker sends no webhooks (webhooks.secret_file is not set)"
        )
        let v = validator(webhooks: true)
        let job = try v.validate(body: Array(t2v(#"{"url": "https://h.example/in", "events": ["started", "completed"]}"#).utf8))
        XCTAssertEqual(job.webhook, Webhook(url: "https://h.example/in", events: [.started, .completed]))
        XCTAssertEqual(try v.validate(body: Array(t2v(#"{"url": "https://h.example/in"}"#).utf8)).webhook?.events, Webhook.defaultEvents)
        XCTAssertEqual(
            message(v, t2v(#"{"url": "https://h.example/in", "events": ["done"]}"#)),
            "webhook: events: each must be one of started, progress, completed, failed, cancelled")
        XCTAssertEqual(message(v, t2v(#"{"url": "https://h.example/in", "events": []}"#)), "webhook: events must name at least one event")
    }

    func testTheNewSectionsAreChecked() {
        func load(_ yaml: String) -> String {
            do {
                try WorkerConfiguration.parse(yaml: yaml).validate()
                return "ok"
            } catch { return error.message }
        }
        XCTAssertEqual(load("outputs:\n  store: s3\n"), "outputs.store: s3 needs storage.endpoint and storage.bucket")
        XCTAssertEqual(load("storage:\n  endpoint: s3.example\n"), "storage.endpoint must be an http:// or https:// URL")
        XCTAssertEqual(
            load("egress:\n  allow_networks: [10.0.0.0/33]\n"),
            "egress.allow_networks: '10.0.0.0/33' is not an address or a CIDR block (e.g. 10.20.0.0/16)")
        XCTAssertEqual(load("inputs:\n  s3_buckets: [b]\n"), "inputs.s3_buckets needs storage.endpoint (s3:// inputs are read from the store)")
        XCTAssertEqual(
            load("storage:\n  endpoint: http://x\n  bucket: b\n  part_size_mb: 100\n  multipart_threshold_mb: 50\n"),
            "storage.part_size_mb (100) must not exceed storage.multipart_threshold_mb (50)")
        XCTAssertEqual(
            load("outputs:\n  store: s3\n  url: public\nstorage:\n  endpoint: http://x\n  bucket: b\n"),
            "outputs.url: public needs outputs.public_base_url")
    }
}
