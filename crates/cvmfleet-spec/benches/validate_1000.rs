//! Benchmark: validate 1,000 spec files (about 10 MB of YAML) with `load_paths`.
//!
//! Run: `cargo bench -p cvmfleet-spec --bench validate_1000`. It writes the files into a temp
//! directory, then times the first (cold) load and the best of five, and prints the process's
//! peak resident memory (`VmHWM`; `/usr/bin/time -v` on the bench binary reports the same).
//! `BENCH_FILES=<n>` changes the number of files.

use std::fmt::Write as _;
use std::time::Instant;

/// Groups per file: with the template below this gives about 10 KB per file.
const GROUPS_PER_FILE: usize = 13;

fn spec_file(i: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# yaml-language-server: $schema=../schemas/fleet.schema.json");
    let _ = writeln!(s, "fleets:\n  - name: bench-{i}\n    region: ap-guangzhou");
    let _ = writeln!(s, "    policies: {{prune: true, maxTerminatePercent: 30}}");
    let _ = writeln!(
        s,
        "    defaults:\n      ImageId: img-pmqg1cw7\n      VirtualPrivateCloud:\n        VpcId: vpc-2zxc8w1p\n      SecurityGroupIds: [sg-5ld3mz1q]\n      Tags: {{team: bench, file: \"{i}\"}}"
    );
    let _ = writeln!(s, "    groups:");
    for g in 0..GROUPS_PER_FILE {
        let _ = writeln!(s, "      - name: group-{g}");
        if g % 4 == 0 {
            // Explicit private IPs, unique across all files.
            let _ = writeln!(
                s,
                "        zones:\n          - zone: ap-guangzhou-3\n            SubnetId: subnet-g3a1x7k2"
            );
            let _ = writeln!(
                s,
                "            PrivateIpAddresses: [10.{}.{}.{}, 10.{}.{}.{}]",
                i / 256,
                i % 256,
                g * 2 + 1,
                i / 256,
                i % 256,
                g * 2 + 2
            );
        } else {
            let _ = writeln!(s, "        replicas: {}", g + 1);
            let _ = writeln!(
                s,
                "        zones:\n          - zone: ap-guangzhou-3\n            SubnetId: subnet-g3a1x7k2\n          - zone: ap-guangzhou-4\n            SubnetId: subnet-h4b2y8m3"
            );
        }
        let _ = writeln!(
            s,
            "        template:\n          InstanceType: S5.MEDIUM2\n          InstanceName: bench-{i}-{g}\n          HostName: bench-{i}-{g}-{{R:1}}\n          SystemDisk: {{DiskType: CLOUD_PREMIUM, DiskSize: 50}}\n          DataDisks:\n            - {{DiskType: CLOUD_SSD, DiskSize: 100, DeleteWithInstance: true}}\n          InternetAccessible:\n            InternetChargeType: TRAFFIC_POSTPAID_BY_HOUR\n            InternetMaxBandwidthOut: 10\n            PublicIpAssigned: true\n          EnhancedService: {{SecurityService: {{Enabled: true}}, MonitorService: {{Enabled: true}}}}\n          Tags: {{group: \"{g}\"}}  # a comment"
        );
    }
    s
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files: usize = std::env::var("BENCH_FILES").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let dir = tempfile::tempdir()?;
    let mut bytes = 0usize;
    for i in 0..files {
        let text = spec_file(i);
        bytes += text.len();
        std::fs::write(dir.path().join(format!("fleet-{i:04}.yaml")), text)?;
    }
    let paths = vec![dir.path().to_path_buf()];
    let mut times = Vec::new();
    for _ in 0..6 {
        let start = Instant::now();
        let specs = cvmfleet_spec::load_paths(&paths).map_err(|d| d.to_string())?;
        times.push(start.elapsed());
        assert_eq!(specs.fleets.len(), files);
    }
    let cold = times[0];
    let best = times.iter().min().copied().unwrap_or(cold);
    println!(
        "validated {files} files, {:.1} MB of YAML: cold {:.0} ms, best of 5 warm {:.0} ms, peak RSS {} MiB",
        bytes as f64 / 1e6,
        cold.as_secs_f64() * 1e3,
        best.as_secs_f64() * 1e3,
        peak_rss_kib().map_or_else(|| "?".to_owned(), |k| (k / 1024).to_string())
    );
    Ok(())
}
