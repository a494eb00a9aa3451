import XCTest

@testable import GenWorkerCore

/// Where S3 credentials come from (the environment, then the shared credentials file), and
/// that printing them never shows the secret.
final class AWSCredentialsTests: XCTestCase {
    private let credentialsFile = """
        # written by `aws configure`
        [default]
        aws_access_key_id = AKIADEFAULT
        aws_secret_access_key = default/secret+key

        ; a second profile, spaced differently and with a token
        [ render ]
        AWS_ACCESS_KEY_ID=AKIARENDER
        aws_secret_access_key=render-secret
        aws_session_token = token==
        region = eu-west-1

        [broken]
        aws_access_key_id = AKIAONLY

        [default]
        aws_session_token = later-token
        """

    func testTheEnvironmentNeedsTheKeyIDAndTheSecret() {
        XCTAssertEqual(
            AWSCredentials.fromEnvironment(["AWS_ACCESS_KEY_ID": "AKIA1", "AWS_SECRET_ACCESS_KEY": "s1", "AWS_SESSION_TOKEN": "t1"]),
            AWSCredentials(accessKeyID: "AKIA1", secretAccessKey: "s1", sessionToken: "t1"))
        XCTAssertEqual(
            AWSCredentials.fromEnvironment(["AWS_ACCESS_KEY_ID": "AKIA1", "AWS_SECRET_ACCESS_KEY": "s1", "AWS_SESSION_TOKEN": ""]),
            AWSCredentials(accessKeyID: "AKIA1", secretAccessKey: "s1"))
        XCTAssertNil(AWSCredentials.fromEnvironment(["AWS_ACCESS_KEY_ID": "AKIA1"]))
        XCTAssertNil(AWSCredentials.fromEnvironment(["AWS_SECRET_ACCESS_KEY": "s1"]))
        XCTAssertNil(AWSCredentials.fromEnvironment(["AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "s1"]))
        XCTAssertNil(AWSCredentials.fromEnvironment([:]))
    }

    func testTheCredentialsFileIsReadByProfile() {
        XCTAssertEqual(
            AWSCredentials.fromCredentialsFile(contents: credentialsFile, profile: "default"),
            AWSCredentials(accessKeyID: "AKIADEFAULT", secretAccessKey: "default/secret+key", sessionToken: "later-token"),
            "a section that appears twice is one section")
        XCTAssertEqual(
            AWSCredentials.fromCredentialsFile(contents: credentialsFile, profile: "render"),
            AWSCredentials(accessKeyID: "AKIARENDER", secretAccessKey: "render-secret", sessionToken: "token=="))
        XCTAssertNil(AWSCredentials.fromCredentialsFile(contents: credentialsFile, profile: "broken"), "no secret")
        XCTAssertNil(AWSCredentials.fromCredentialsFile(contents: credentialsFile, profile: "missing"))
        XCTAssertNil(AWSCredentials.fromCredentialsFile(contents: "", profile: "default"))
        XCTAssertNil(
            AWSCredentials.fromCredentialsFile(contents: "aws_access_key_id = A\naws_secret_access_key = B\n", profile: "default"),
            "keys before any section belong to no profile")
        XCTAssertEqual(
            AWSCredentials.fromCredentialsFile(
                contents: "[default]\r\naws_access_key_id = A\r\n#aws_secret_access_key = X\r\naws_secret_access_key = B\r\n", profile: "default"),
            AWSCredentials(accessKeyID: "A", secretAccessKey: "B"), "CRLF line ends, a commented-out line")
    }

    func testResolvePrefersTheEnvironmentThenTheFileAndItsProfile() {
        var asked: [String] = []
        let files = ["/home/gw/.aws/credentials": credentialsFile, "/etc/genworker/aws": "[default]\naws_access_key_id=F\naws_secret_access_key=G\n"]
        let read = { (path: String) -> String? in
            asked.append(path)
            return files[path]
        }
        let environment = ["HOME": "/home/gw", "AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "env-secret"]
        XCTAssertEqual(AWSCredentials.resolve(environment: environment, readFile: read)?.accessKeyID, "AKIAENV")
        XCTAssertEqual(asked, [], "the file is not read when the environment has credentials")

        XCTAssertEqual(AWSCredentials.resolve(environment: ["HOME": "/home/gw"], readFile: read)?.accessKeyID, "AKIADEFAULT")
        XCTAssertEqual(AWSCredentials.resolve(environment: ["HOME": "/home/gw", "AWS_PROFILE": "render"], readFile: read)?.accessKeyID, "AKIARENDER")
        XCTAssertEqual(
            AWSCredentials.resolve(environment: ["HOME": "/home/gw", "AWS_SHARED_CREDENTIALS_FILE": "/etc/genworker/aws"], readFile: read)?
                .accessKeyID,
            "F")
        XCTAssertEqual(
            AWSCredentials.resolve(environment: ["HOME": "/home/gw", "AWS_SHARED_CREDENTIALS_FILE": "~/.aws/credentials"], readFile: read)?
                .accessKeyID,
            "AKIADEFAULT")
        XCTAssertEqual(asked, ["/home/gw/.aws/credentials", "/home/gw/.aws/credentials", "/etc/genworker/aws", "/home/gw/.aws/credentials"])

        XCTAssertNil(AWSCredentials.resolve(environment: ["HOME": "/home/gw", "AWS_PROFILE": "missing"], readFile: read))
        XCTAssertNil(AWSCredentials.resolve(environment: ["HOME": "/nowhere"], readFile: read))
        XCTAssertNil(AWSCredentials.resolve(environment: [:], readFile: read), "no HOME and no file named")
    }

    func testPrintingCredentialsNeverShowsTheSecretOrTheToken() {
        let credentials = AWSCredentials(accessKeyID: "AKIASHOWN", secretAccessKey: "SECRET-VALUE", sessionToken: "TOKEN-VALUE")
        var dumped = ""
        dump(credentials, to: &dumped)
        for text in [String(describing: credentials), String(reflecting: credentials), "\(credentials)", dumped, "\([credentials])"] {
            XCTAssertTrue(text.contains("AKIASHOWN"), text)
            XCTAssertFalse(text.contains("SECRET-VALUE"), text)
            XCTAssertFalse(text.contains("TOKEN-VALUE"), text)
        }
        XCTAssertEqual(credentials.description, "AWSCredentials(AKIASHOWN, secret redacted, session token redacted)")
        XCTAssertEqual(AWSCredentials(accessKeyID: "AKIASHOWN", secretAccessKey: "x").description, "AWSCredentials(AKIASHOWN, secret redacted)")
    }
}
