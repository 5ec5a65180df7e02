"""A report's files: PDF (WeasyPrint, Noto CJK), XLSX (one sheet per section) and CSV.

The report itself holds aggregates only (no donor or requester data), so its files are not
personal data; the drill-down CSV lists tickets with their requesters and is logged as such
(``analysis.views.drilldown_csv``).
"""

from __future__ import annotations

import csv
import io
from typing import Any

from django.contrib.staticfiles import finders
from django.template.loader import render_to_string

from analysis.models import MonthlyReport
from analysis.tables import report_tables


def report_pdf(report: MonthlyReport, context: dict[str, Any]) -> bytes:
    # Imported here: WeasyPrint loads Pango through cffi, which only PDF requests need.
    from weasyprint import CSS, HTML

    html = render_to_string("analysis/report_pdf.html", context)
    stylesheet = CSS(filename=finders.find("css/analysis-pdf.css"))
    return HTML(string=html).write_pdf(stylesheets=[stylesheet])


def report_xlsx(report: MonthlyReport) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    workbook.remove(workbook.active)
    bold = Font(bold=True)
    for table in report_tables(report.data, comments=report.comments, measures=report.measures):
        # Sheet names: at most 31 characters, none of []:*?/\
        sheet = workbook.create_sheet(table.title.replace("/", "・")[:31])
        sheet.append(table.header)
        for cell in sheet[1]:
            cell.font = bold
        for row in table.rows:
            sheet.append(row)
        sheet.column_dimensions["A"].width = 36
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def report_csv(report: MonthlyReport) -> str:
    """Every section in one file: a title row, its header, its rows, a blank line."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for table in report_tables(report.data, comments=report.comments, measures=report.measures):
        writer.writerow([f"■{table.title}"])
        writer.writerow(table.header)
        writer.writerows(["" if v is None else v for v in row] for row in table.rows)
        writer.writerow([])
    # A BOM so that Excel opens the UTF-8 file with the Japanese intact.
    return "\ufeff" + buffer.getvalue()
