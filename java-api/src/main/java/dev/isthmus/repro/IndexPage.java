package dev.isthmus.repro;

import java.io.IOException;
import java.math.BigDecimal;
import java.math.MathContext;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.stream.Stream;

/**
 * {@code index.html}: one page over every report in a folder, rebuilt from the {@code NAME.json}
 * files each time one is written, so running one experiment keeps the others' sections. The page
 * is self-contained apart from the plots, which are the PNG files next to it.
 */
public final class IndexPage {
    /** The page's file name in the report folder. */
    public static final String FILE = "index.html";

    private IndexPage() {}

    /**
     * Rebuilds {@code dir/index.html} from the reports in {@code dir}, in order of name. A JSON file
     * that cannot be read as a report (one from an older version, say) is named on the page with
     * the reason rather than stopping the others from being shown.
     *
     * @return the page's path
     */
    public static Path write(Path dir) throws IOException {
        List<Report> reports = new ArrayList<>();
        List<String> unreadable = new ArrayList<>();
        List<Path> files;
        try (Stream<Path> listing = Files.list(dir)) {
            files = listing.filter(p -> p.getFileName().toString().endsWith(".json")).sorted().toList();
        }
        for (Path f : files) {
            try {
                reports.add(Reports.read(f));
            } catch (IOException | RuntimeException e) {
                unreadable.add(f.getFileName() + ": " + String.valueOf(e.getMessage()).lines().findFirst().orElse(""));
            }
        }
        reports.sort(Comparator.comparing(Report::name));
        Path page = dir.resolve(FILE);
        Files.writeString(page, html(reports, unreadable));
        return page;
    }

    private static String html(List<Report> reports, List<String> unreadable) {
        StringBuilder h = new StringBuilder("""
                <!DOCTYPE html>
                <html lang="en">
                <head>
                <meta charset="utf-8">
                <title>Isthmus reproductions</title>
                <style>
                body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
                table { border-collapse: collapse; margin: .5rem 0 1rem; }
                th, td { border: 1px solid #ccc; padding: .25rem .6rem; text-align: left; vertical-align: top; }
                td.num { text-align: right; font-variant-numeric: tabular-nums; }
                section { border-top: 2px solid #ddd; margin-top: 2rem; }
                .badge { display: inline-block; padding: .1rem .6rem; border-radius: .8rem; color: #fff; font-size: .9rem; }
                .reproduced { background: #2e7d32; } .partly { background: #b26a00; } .not-reproduced { background: #c62828; }
                .held { color: #2e7d32; } .failed { color: #c62828; }
                .meta { color: #666; font-size: .9rem; }
                img { max-width: 100%; }
                </style>
                </head>
                <body>
                <h1>Isthmus reproductions</h1>
                """);
        if (reports.isEmpty()) h.append("<p>No reports yet: <code>./isthmus reproduce</code> writes them here.</p>\n");
        else {
            h.append("<table>\n<tr><th>experiment</th><th>verdict</th><th>seconds</th><th>size</th><th>finished</th></tr>\n");
            for (Report r : reports) {
                h.append("<tr><td><a href=\"#").append(r.name()).append("\">").append(esc(r.name())).append("</a></td><td>")
                        .append(badge(r.verdict())).append("</td><td class=\"num\">").append(number(r.seconds()))
                        .append("</td><td>").append(r.quick() ? "quick" : "default").append("</td><td>")
                        .append(esc(r.finished())).append("</td></tr>\n");
            }
            h.append("</table>\n");
        }
        for (String u : unreadable) h.append("<p class=\"failed\">Not shown: ").append(esc(u)).append("</p>\n");
        for (Report r : reports) section(h, r);
        return h.append("</body>\n</html>\n").toString();
    }

    private static void section(StringBuilder h, Report r) {
        h.append("<section id=\"").append(r.name()).append("\">\n<h2>").append(esc(r.name())).append(' ')
                .append(badge(r.verdict())).append("</h2>\n");
        h.append("<p><b>Paper.</b> ").append(esc(r.citation())).append("</p>\n");
        h.append("<p><b>Claim.</b> ").append(esc(r.claim())).append("</p>\n");

        h.append("<h3>Setup</h3>\n<table>\n");
        r.setup().forEach((k, v) -> h.append("<tr><th>").append(esc(k)).append("</th><td>")
                .append(esc(v instanceof Number n ? number(n.doubleValue()) : String.valueOf(v))).append("</td></tr>\n"));
        h.append("</table>\n");

        h.append("<h3>Results</h3>\n<table>\n<tr><th>metric</th><th>measured</th><th>paper</th><th>criterion</th></tr>\n");
        Set<String> rows = new LinkedHashSet<>(r.metrics().keySet());
        rows.addAll(r.paper().keySet());
        for (String m : rows) {
            Double measured = r.metrics().get(m), paper = r.paper().get(m);
            StringBuilder criteria = new StringBuilder();
            for (Check c : r.criteria()) {
                if (!c.metric().equals(m)) continue;
                if (!criteria.isEmpty()) criteria.append("<br>");
                criteria.append("<span class=\"").append(c.held() ? "held\">&#10003; " : "failed\">&#10007; ")
                        .append(esc(c.comparator().symbol())).append(' ').append(number(c.threshold())).append("</span>");
            }
            h.append("<tr><td>").append(esc(m)).append("</td><td class=\"num\">")
                    .append(measured == null ? "" : number(measured)).append("</td><td class=\"num\">")
                    .append(paper == null ? "" : number(paper)).append("</td><td>").append(criteria).append("</td></tr>\n");
        }
        h.append("</table>\n");
        long held = r.criteria().stream().filter(Check::held).count();
        h.append("<p>").append(held).append(" of ").append(r.criteria().size())
                .append(" criteria held: ").append(esc(r.verdict().label())).append(".</p>\n");

        for (Plot p : r.plots()) {
            h.append("<figure><img src=\"").append(r.plotFile(p)).append("\" alt=\"").append(esc(p.title()))
                    .append("\"></figure>\n");
        }
        h.append(String.format(Locale.ROOT, "<p class=\"meta\">%s run, seed %d, %s s on the %s backend, finished %s. "
                        + "Numbers: <a href=\"%s\">%s</a>.</p>%n</section>%n", r.quick() ? "Quick" : "Default-size", r.seed(),
                number(r.seconds()), esc(r.backend()), esc(r.finished()), r.jsonFile(), r.jsonFile()));
    }

    private static String badge(Verdict v) {
        return "<span class=\"badge " + v.label().replace(' ', '-') + "\">" + v.label() + "</span>";
    }

    /**
     * Whole numbers (sizes, epochs) exactly; others to four significant digits without trailing zeros
     * (0.5, 0.9365), which is enough to compare with a paper; very small or large ones in scientific
     * notation.
     */
    static String number(double v) {
        if (!Double.isFinite(v)) return String.valueOf(v);
        double a = Math.abs(v);
        if (v == Math.rint(v) && a < 1e15) return Long.toString((long) v);
        if (a != 0 && (a < 1e-4 || a >= 1e9)) return String.format(Locale.ROOT, "%.3e", v);
        return new BigDecimal(v).round(new MathContext(4)).stripTrailingZeros().toPlainString();
    }

    private static String esc(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
    }
}
