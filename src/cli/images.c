/* berth pull, load, images, rmi: the image commands. */
#define _GNU_SOURCE
#include <getopt.h>
#include <jansson.h>
#include <string.h>

#include "berth.h"
#include "util/util.h"

#include "cli/cli.h"

static const char *PULL_HELP = "Usage: berth pull [OPTIONS] REF\n\n"
                               "Pull an image from a registry into berth's store.\n\n"
                               "  --platform OS/ARCH[/VARIANT]  choose from a multi-platform image (default: this host)\n"
                               "  -q, --quiet                   no progress output\n"
                               "      --json                    print the result as JSON only\n";

static const char *LOAD_HELP = "Usage: berth load [OPTIONS] PATH\n\n"
                               "Import an OCI image layout (directory or tar) or a `docker save` archive.\n\n"
                               "  --name REF     name for the image (default: from the archive)\n"
                               "  -q, --quiet    no progress output\n"
                               "      --json     print the result as JSON only\n";

static const char *IMAGES_HELP = "Usage: berth images [--json]\n\nList images in berth's store.\n";
static const char *RMI_HELP = "Usage: berth rmi [-f] [--json] REF...\n\n"
                              "Remove image names; with an image's last name the image goes, with every layer no other\n"
                              "image or container uses. REF may be a digest (sha256:HEX or 4+ of its first hex digits):\n"
                              "every name of that image goes. An image a container uses is refused, naming the container.\n\n"
                              "  -f, --force   take the names of an image in use away anyway: the image stays, unnamed,\n"
                              "                until no container uses it (`berth system prune` removes it then)\n"
                              "      --json    the results as JSON\n";

struct common {
  bool json, quiet, help, force;
  const char *platform, *name;
};

static int parse(const char *cmd, int argc, char **argv, struct common *c) {
  static struct option opts[] = {{"json", no_argument, 0, 'j'},
                                 {"quiet", no_argument, 0, 'q'},
                                 {"help", no_argument, 0, 'h'},
                                 {"platform", required_argument, 0, 'p'},
                                 {"name", required_argument, 0, 'n'},
                                 {"force", no_argument, 0, 'f'},
                                 {0, 0, 0, 0}};
  optind = 1;
  opterr = 0;
  int o;
  while ((o = getopt_long(argc, argv, "+qhf", opts, NULL)) != -1) {
    switch (o) {
    case 'j': c->json = true; break;
    case 'q': c->quiet = true; break;
    case 'h': c->help = true; break;
    case 'p': c->platform = optarg; break;
    case 'n': c->name = optarg; break;
    case 'f':
      if (strcmp(cmd, "rmi")) return cli_usage_error(cmd, "unknown option `%s`", argv[optind - 1]);
      c->force = true;
      break;
    default: return cli_usage_error(cmd, "unknown option `%s`", argv[optind - 1]);
    }
  }
  return 0;
}

int cmd_pull(int argc, char **argv) {
  struct common c = {0};
  if (parse("pull", argc, argv, &c)) return EXIT_BERTH;
  if (c.help) return fputs(PULL_HELP, stdout), 0;
  if (optind != argc - 1) return cli_usage_error("pull", "expected exactly one image reference%s", "");
  struct berth_pull_options po = {.platform = c.platform, .quiet = c.quiet, .json_progress = c.json};
  char *res = NULL;
  berth_error_t err = NULL;
  if (berth_image_pull(argv[optind], &po, &res, &err) < 0) return cli_fail(c.json, err);
  if (c.json) cli_print_json_text(res);
  else if (!c.quiet) cli_print_pull_human(res);
  free(res);
  return 0;
}

int cmd_load(int argc, char **argv) {
  struct common c = {0};
  if (parse("load", argc, argv, &c)) return EXIT_BERTH;
  if (c.help) return fputs(LOAD_HELP, stdout), 0;
  if (optind != argc - 1) return cli_usage_error("load", "expected exactly one PATH%s", "");
  struct berth_pull_options po = {.quiet = c.quiet, .json_progress = c.json};
  char *res = NULL;
  berth_error_t err = NULL;
  if (berth_image_load(argv[optind], c.name, &po, &res, &err) < 0) return cli_fail(c.json, err);
  if (c.json) cli_print_json_text(res);
  else if (!c.quiet) cli_print_pull_human(res);
  free(res);
  return 0;
}

int cmd_images(int argc, char **argv) {
  struct common c = {0};
  if (parse("images", argc, argv, &c)) return EXIT_BERTH;
  if (c.help) return fputs(IMAGES_HELP, stdout), 0;
  char *res = NULL;
  berth_error_t err = NULL;
  if (berth_image_list(&res, &err) < 0) return cli_fail(c.json, err);
  if (c.json) {
    cli_print_json_text(res);
    free(res);
    return 0;
  }
  json_t *arr = json_loads(res, 0, NULL);
  free(res);
  printf("%-50s %-19s %-14s %10s %s\n", "NAME", "DIGEST", "PLATFORM", "SIZE", "LAYERS");
  size_t i;
  json_t *img;
  json_array_foreach(arr, i, img) {
    json_t *names = json_object_get(img, "names");
    char sz[32];
    human_size((uint64_t)json_integer_value(json_object_get(img, "size")), sz, sizeof sz);
    size_t nn = json_array_size(names);
    for (size_t k = 0; k < (nn ? nn : 1); k++)
      printf("%-50s %-19.19s %-14s %10s %zu\n", nn ? json_string_value(json_array_get(names, k)) : "<none>",
             json_string_value(json_object_get(img, "digest")), json_string_value(json_object_get(img, "platform")), sz,
             json_array_size(json_object_get(img, "layers")));
  }
  json_decref(arr);
  return 0;
}

int cmd_rmi(int argc, char **argv) {
  struct common c = {0};
  if (parse("rmi", argc, argv, &c)) return EXIT_BERTH;
  if (c.help) return fputs(RMI_HELP, stdout), 0;
  if (optind >= argc) return cli_usage_error("rmi", "expected at least one image reference%s", "");
  int rc = 0;
  json_t *all = json_array();
  for (int i = optind; i < argc; i++) {
    char *res = NULL;
    berth_error_t err = NULL;
    if (berth_rmi(argv[i], c.force, &res, &err) < 0) {
      if (c.json) json_array_append_new(all, json_pack("{s:s, s:s}", "image", argv[i], "error", err->msg));
      else fprintf(stderr, "berth: error: %s\n", err->msg);
      berth_error_free(err);
      rc = EXIT_BERTH;
      continue;
    }
    json_t *j = json_loads(res, 0, NULL);
    free(res);
    if (c.json) json_array_append(all, j);
    else {
      printf("Untagged: %s\n", json_string_value(json_object_get(j, "untagged")));
      size_t k;
      json_t *d;
      json_array_foreach(json_object_get(j, "deleted_layers"), k, d) printf("Deleted layer: %s\n", json_string_value(d));
      json_t *kept = json_object_get(j, "kept_for");
      if (json_array_size(kept)) {
        printf("Kept image %s, unnamed: container%s", json_string_value(json_object_get(j, "digest")),
               json_array_size(kept) > 1 ? "s" : "");
        json_array_foreach(kept, k, d) printf("%s %s", k ? "," : "", json_string_value(d));
        printf(" use%s it (`berth system prune` removes it once they are gone)\n", json_array_size(kept) > 1 ? "" : "s");
      }
    }
    json_decref(j);
  }
  if (c.json) {
    char *t = json_dumps(all, JSON_INDENT(2));
    cli_print_json_text(t);
    free(t);
  }
  json_decref(all);
  return rc;
}
