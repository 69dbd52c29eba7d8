package dev.isthmus.cli;

import java.io.PrintStream;

/**
 * {@code isthmus reproduce}: runs registered paper reproductions. The framework and the
 * reproductions themselves arrive in later issues; until then this says so and runs nothing.
 */
final class ReproduceCommand {
    private ReproduceCommand() {}

    static int run(String[] args, PrintStream out, PrintStream err) {
        for (String a : args) {
            if (a.equals("--help") || a.equals("-h")) {
                out.println("Usage: ./isthmus reproduce [name]\n"
                        + "Runs every registered paper reproduction, or the one named. None are registered yet.");
                return 0;
            }
        }
        if (args.length > 0) {
            err.println("isthmus reproduce: no reproduction named '" + args[0]
                    + "': no reproductions are registered yet.");
            return Main.USAGE;
        }
        out.println("No reproductions are registered yet: the reproduction framework and the paper");
        out.println("reproductions arrive in later issues. Nothing was run.");
        out.println("What works today: the tensor core, autograd and the reference backend;");
        out.println("'./isthmus test' checks them and './isthmus info' describes this installation.");
        return 0;
    }
}
