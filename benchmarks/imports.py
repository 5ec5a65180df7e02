"""CSV import throughput: a ふるさとチョイス-style CP932 export into a fresh database.

    export DEBUG=false SECRET_KEY=benchmark-only-secret TWILIO_AUTH_TOKEN=benchmark-only-token
    DATABASE_URL=postgres://furusato:furusato@127.0.0.1:5432/fz_imports_bench \\
        .venv/bin/python -m benchmarks.imports --rows 1000000

The database named in DATABASE_URL is dropped, created and migrated (pass --keep-database to
reuse it). The file is generated on disk (streamed; every row a donor with its own number, phone
and address, a third with a second gift, most with a valid tracking number, a few duplicated rows
and bad dates), then imported in this process exactly as a worker runs an import
(donations_sync.services.import_run_execute), and imported again (all unchanged). Printed:
rows/s of both imports and the process's peak RSS (ru_maxrss), against the targets
≥ 20,000 rows/s, ≥ 50,000 rows/s re-import, ≤ 300 MB; and, as figures that do not depend on
what else the machine is doing, CPU microseconds per row of this process (all its threads) and
of the PostgreSQL backends serving this database (read from /proc while the import runs, so
PostgreSQL must run on this machine; otherwise only the process's figure is shown).
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

TARGET_FIRST = 20_000
TARGET_AGAIN = 50_000
TARGET_RSS_MB = 300

HEADER = [
    "寄附者番号", "申込日", "入金日", "氏名", "フリガナ", "〒", "都道府県", "市区町村", "町名・番地",
    "マンション名", "電話番号", "E-mailアドレス", "寄附金額", "寄附金の払込方法", "返礼品辞退",
    "返礼品1_コード", "返礼品1_名称", "返礼品1_配達希望日", "返礼品1_配達希望時間", "返礼品1_運送業者",
    "返礼品1_伝票番号", "返礼品1_発送日", "返礼品1_送り先_名前", "返礼品1_送り先_フリガナ",
    "返礼品1_送り先_郵便番号", "返礼品1_送り先_電話番号",
    "返礼品2_コード", "返礼品2_名称", "返礼品2_配達希望日", "返礼品2_配達希望時間", "返礼品2_運送業者",
    "返礼品2_伝票番号", "返礼品2_発送日", "返礼品2_送り先_名前", "返礼品2_送り先_フリガナ",
    "返礼品2_送り先_郵便番号", "返礼品2_送り先_電話番号",
    "お礼状出力日", "寄附受領証明書出力日", "ワンストップ特例_要望", "ワンストップ特例 申請書返送確認日",
    "外部管理番号", "備考",
]  # fmt: skip

SURNAMES = [
    ("髙橋", "ﾀｶﾊｼ"),
    ("山﨑", "ヤマザキ"),
    ("佐藤", "サトウ"),
    ("鈴木", "すずき"),
    ("田中", "タナカ"),
]
GIVEN = [
    ("一郎", "ｲﾁﾛｳ"),
    ("花子", "ハナコ"),
    ("太郎", "たろう"),
    ("﨑子", "サキコ"),
    ("健", "ケン"),
]
CITIES = [
    ("東京都", "千代田区"),
    ("大阪府", "大阪市北区"),
    ("北海道", "札幌市中央区"),
    ("福岡県", "福岡市博多区"),
]
GIFTS = [("OTR-001", "いくら醤油漬け①"), ("OTR-002", "鮭の親子漬け"), ("OTR-003", "小樽ワイン")]


def tracking(n: int) -> str:
    body = f"{40000000000 + n:011d}"
    return body + str(int(body) % 7)


def generate(path: Path, rows: int) -> None:
    with path.open("w", encoding="cp932", newline="") as out:
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(HEADER)
        for i in range(rows):
            surname, surname_kana = SURNAMES[i % 5]
            given, given_kana = GIVEN[(i // 5) % 5]
            prefecture, city = CITIES[i % 4]
            day = 1 + i % 28
            code, gift = GIFTS[i % 3]
            shipped = i % 4 != 0
            row = [
                f"D{i:08d}",
                f"令和6年{1 + i % 12}月{day}日" if i % 2 else f"2024/{1 + i % 12}/{day}",
                f"2024-{1 + i % 12:02d}-{day:02d}",
                f"{surname} {given}",
                f"{surname_kana} {given_kana}",
                f"{100 + i % 800:03d}-{i % 10000:04d}",
                prefecture,
                city,
                f"{1 + i % 9}丁目{1 + i % 30}－{1 + i % 20}",
                "" if i % 3 else "メゾン１０１",
                f"090-{1000 + (i // 10000) % 9000:04d}-{i % 10000:04d}",
                f"donor{i}@example.jp",
                f"￥{10000 + (i % 10) * 5000:,}",
                "クレジットカード決済",
                "",
                code,
                gift,
                "",
                "14時～16時" if i % 2 else "",
                "ヤマト運輸",
                tracking(i) if shipped else "",
                f"R6.{1 + i % 12}.{day}" if shipped else "",
                f"{surname} {given}",
                f"{surname_kana} {given_kana}",
                f"{100 + i % 800:03d}{i % 10000:04d}",
                f"090-{1000 + (i // 10000) % 9000:04d}-{i % 10000:04d}",
            ]
            if i % 3 == 0:
                row += [
                    "OTR-002",
                    "鮭の親子漬け",
                    "2024/12/28",
                    "午前中",
                    "クロネコヤマト",
                    tracking(10_000_000 + i) if shipped else "",
                    "2024年12月20日" if shipped else "",
                    f"{surname} {given}",
                    "",
                    f"{100 + i % 800:03d}{i % 10000:04d}",
                    "",
                ]
            else:
                row += [""] * 11
            row += [
                "",
                "",
                "希望する" if i % 2 else "希望しない",
                "",
                f"EX{i:09d}",
                "不在時は\n宅配ボックスへ" if i % 1000 == 0 else "",
            ]
            writer.writerow(row)
            if i % 100_000 == 99_999:
                writer.writerow(row)  # a duplicated row (rejected)


def fresh_database() -> None:
    from django.conf import settings
    from django.db import connection

    name = settings.DATABASES["default"]["NAME"]
    with connection._nodb_cursor() as cursor:  # noqa: SLF001 - the maintenance database
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )


class BackendCpu:
    """CPU seconds of the PostgreSQL backends connected to this database while it runs.

    Every half second the backends' pids come from pg_stat_activity and their utime + stime
    from /proc/<pid>/stat; a backend that exits (the statement thread's connection) keeps the
    last figure read, so at most half a second of its work is missed."""

    def __init__(self) -> None:
        self.seconds: dict[int, float] = {}
        self.stop = threading.Event()
        self.tick = os.sysconf("SC_CLK_TCK")
        self.thread = threading.Thread(target=self._watch, name="backend-cpu", daemon=True)

    def __enter__(self) -> BackendCpu:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()

    def _watch(self) -> None:
        import psycopg
        from django.conf import settings

        db = settings.DATABASES["default"]
        with psycopg.connect(
            dbname=db["NAME"],
            user=db["USER"],
            password=db["PASSWORD"],
            host=db["HOST"],
            port=db["PORT"] or 5432,
            autocommit=True,
        ) as watcher:
            own = watcher.info.backend_pid
            while True:
                pids = [
                    pid
                    for (pid,) in watcher.execute(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                        "AND backend_type = 'client backend' AND pid <> %s",
                        [own],
                    )
                ]
                for pid in pids:
                    try:
                        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    except OSError:
                        continue
                    self.seconds[pid] = (int(stat[11]) + int(stat[12])) / self.tick
                if self.stop.wait(0.5):
                    return

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


def process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--file", help="use (or keep) the generated file here")
    parser.add_argument("--statements", action="store_true", help="time per SQL statement")
    args = parser.parse_args()

    import django

    django.setup()
    if not args.keep_database:
        print("データベースを作り直しています…", flush=True)
        fresh_database()

    from benchmarks._mirror import mirror_municipality
    from donations_sync import services
    from donations_sync.models import Donation, ImportRun, Shipment

    municipality = mirror_municipality()

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(args.file) if args.file else Path(scratch) / "choice.csv"
        if not path.exists():
            began = time.perf_counter()
            generate(path, args.rows)
            print(
                f"ファイル生成：{args.rows:,}行、{path.stat().st_size / 1e6:,.0f} MB（CP932）、"
                f"{time.perf_counter() - began:.0f}秒",
                flush=True,
            )
        figures = []
        for label in ("初回取込", "再取込（全行変更なし）"):
            with path.open("rb") as binary:
                run = services.import_run_create(
                    municipality=municipality,
                    style="choice",
                    file=binary,
                    original_name=path.name,
                    queue=False,
                )
            began = time.perf_counter()
            cpu_began = process_cpu()
            with BackendCpu() as backends:
                run = services.import_run_execute(run_id=run.pk, progress=_progress(began))
            elapsed = time.perf_counter() - began
            python_cpu = process_cpu() - cpu_began
            print()
            assert run.status == ImportRun.Status.DONE, run.error
            run.raw_file.storage.delete(run.raw_file.name)  # the stored copy: not kept
            rate = run.rows_read / elapsed
            figures.append(rate)
            print(
                f"{label}：{run.rows_read:,}行 {elapsed:.1f}秒 → {rate:,.0f}行/秒　"
                f"新規 {run.imported:,} 更新 {run.updated:,} 変更なし {run.unchanged:,} "
                f"取込不可 {run.rejected:,}　ピークRSS {peak_rss_mb():.0f} MB",
                flush=True,
            )
            print(
                f"  CPU/行：Python {python_cpu / run.rows_read * 1e6:.1f} µs、"
                f"PostgreSQL {backends.total / run.rows_read * 1e6:.1f} µs"
                f"（Python {python_cpu:.1f}秒、PostgreSQL {backends.total:.1f}秒）"
                f"　load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
                flush=True,
            )
        print(
            f"寄附 {Donation.objects.count():,}件、配送 {Shipment.objects.count():,}件",
        )
        if args.statements:
            from donations_sync.import_apply import STATEMENT_SECONDS

            for statement, seconds in STATEMENT_SECONDS.most_common(40):
                print(f"  {seconds:7.2f}秒  {statement}")
    rss = peak_rss_mb()
    print(
        f"\n初回 {figures[0]:,.0f}行/秒（目標 ≥ {TARGET_FIRST:,}）"
        f"{' OK' if figures[0] >= TARGET_FIRST else ' 未達'}、"
        f"再取込 {figures[1]:,.0f}行/秒（目標 ≥ {TARGET_AGAIN:,}）"
        f"{' OK' if figures[1] >= TARGET_AGAIN else ' 未達'}、"
        f"ピークRSS {rss:.0f} MB（目標 ≤ {TARGET_RSS_MB}）{' OK' if rss <= TARGET_RSS_MB else ' 未達'}"
    )


def _progress(began: float):
    def show(run) -> None:
        elapsed = time.perf_counter() - began
        sys.stdout.write(
            f"\r  {run.rows_read:>10,}行  {run.rows_read / max(elapsed, 1e-9):>8,.0f}行/秒  "
            f"RSS {peak_rss_mb():.0f} MB"
        )
        sys.stdout.flush()

    return show


if __name__ == "__main__":
    main()
