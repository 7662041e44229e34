package main

import "github.com/spf13/cobra"

func (c *cli) historyCommand() *cobra.Command  { return &cobra.Command{Use: "history"} }
func (c *cli) rollbackCommand() *cobra.Command { return &cobra.Command{Use: "rollback"} }
