//! ffmpeg as a peer: pushing a file to a server as a source client, decoding a stream.

use super::*;

/// ffmpeg sending `mp3` (looped, in real time, frames copied as they are) to `target`
/// (an `icecast://` URL) with `extra` options before the output.
pub fn ffmpeg_push(mp3: &Path, target: &str, extra: &[&str]) -> Child {
    let mut args = vec!["-content_type", "audio/mpeg"];
    args.extend_from_slice(extra);
    ffmpeg_push_as(mp3, "mp3", target, &args)
}

/// ffmpeg sending `file` (looped, in real time, copied as it is) as `format` to `target`,
/// with `extra` options before the output.
pub fn ffmpeg_push_as(file: &Path, format: &str, target: &str, extra: &[&str]) -> Child {
    require_program("ffmpeg", "ffmpeg");
    Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-loglevel",
            "error",
            "-re",
            "-stream_loop",
            "-1",
            "-i",
        ])
        .arg(file)
        .args(["-c:a", "copy"])
        .args(extra)
        .args(["-f", format, target])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ffmpeg")
}

/// Decodes `secs` seconds of the stream at `url` with ffmpeg; returns (success, stderr).
pub fn ffmpeg_decode(url: &str, secs: u32) -> (bool, String) {
    require_program("ffmpeg", "ffmpeg");
    let out = Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-v",
            "error",
            "-rw_timeout",
            "10000000",
            "-i",
            url,
            "-t",
            &secs.to_string(),
            "-f",
            "null",
            "-",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run ffmpeg");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
